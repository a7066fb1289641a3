"""Build the nnc C core and its Cython bindings.

The C core (src_c/) is compiled into the extension nnc._core.  Per-ISA code is
selected at run time (src_c/runtime/dispatch.c); the baseline build flags are portable
x86-64 (or whatever the target architecture's baseline is): never
-march=native, never -ffast-math.

NNC_DEBUG=1 builds with AddressSanitizer + UBSan (-O1 -g; .ci/asan.sh runs the tests on it).
"""
import glob
import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "build_tools"))
import gen_pxi  # noqa: E402  (build_tools/ is not a package)

gen_pxi.main()   # nnc/_capi.pxi: the Cython declarations of the C API, from its headers

debug = os.environ.get("NNC_DEBUG") == "1"
cflags = ["-fopenmp", "-std=c11"]
ldflags = ["-fopenmp"]
if debug:
    cflags += ["-O1", "-g", "-fno-omit-frame-pointer",
               "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    ldflags += ["-fsanitize=address,undefined"]
else:
    # -g0: no debug information in the shipped extension (Python's own CFLAGS
    # ask for -g; NNC_DEBUG=1 keeps it)
    cflags += ["-O3", "-g0", "-fno-math-errno", "-fno-trapping-math", "-fno-semantic-interposition"]

sources = ["nnc/_core.pyx"] + sorted(glob.glob("src_c/runtime/*.c")) + sorted(glob.glob("src_c/isa/*/isa.c"))
ext = Extension(
    "nnc._core",
    sources,
    include_dirs=[np.get_include(), "src_c", "src_c/include"],
    depends=sorted(glob.glob("src_c/**/*.h", recursive=True) + glob.glob("src_c/**/*.def", recursive=True)
                   + glob.glob("nnc/*.pxi")),
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"), ("NPY_TARGET_VERSION", "NPY_1_25_API_VERSION")],
    extra_compile_args=cflags,
    extra_link_args=ldflags,
)
directives = {"boundscheck": debug, "wraparound": False, "cdivision": True,
              "initializedcheck": debug, "embedsignature": True, "language_level": 3}
setup(ext_modules=cythonize([ext], compiler_directives=directives))
