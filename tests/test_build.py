"""Build hygiene: AVX code only inside the dispatched kernels; ISA override."""
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

import nnc
from nnc import _core


def _core_so():
    return glob.glob(os.path.join(os.path.dirname(nnc.__file__), "_core*.so"))[0]


@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs binutils objdump")
def test_no_avx_instructions_outside_dispatched_kernels():
    asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", _core_so()], capture_output=True, text=True,
                         check=True).stdout
    fn, leaks, dispatched = None, set(), 0
    for line in asm.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            fn = m.group(1)
        elif "%ymm" in line or "%zmm" in line:
            if re.search(r"__avx(2|512)", fn or ""):
                dispatched += 1
            else:
                leaks.add(fn)
    assert dispatched > 0, "no AVX code found at all: is the dispatch compiled in?"
    assert not leaks, f"AVX instructions in baseline functions: {sorted(leaks)[:10]}"


def _isa_in_subprocess(value):
    env = dict(os.environ, NNC_ISA=value)
    return subprocess.run([sys.executable, "-c", "import nnc; from nnc import _core; print(_core.get_isa())"],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("name", _core.ISA_NAMES)
def test_nnc_isa_forces_a_supported_path(name):
    if not _core.isa_supported(name):
        pytest.skip(f"this CPU lacks {name}")
    r = _isa_in_subprocess(name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == name


def test_nnc_isa_rejects_unknown_names():
    r = _isa_in_subprocess("sse9")
    assert r.returncode != 0 and "NNC_ISA" in r.stderr


def test_set_isa_rejects_unknown():
    with pytest.raises(ValueError, match="not supported"):
        _core.set_isa("neon9")
