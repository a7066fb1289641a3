#!/usr/bin/env bash
# Sanitizer run: builds the extension with
# AddressSanitizer + UndefinedBehaviorSanitizer (NNC_DEBUG=1 in setup.py) in a
# separate virtual environment and a separate copy of the tree (so neither a
# normal in-place build shadows it nor it shadows the normal build), then runs
# the whole test suite under it.  Any sanitizer report fails the run: ASan and
# UBSan abort the process that hits one (a test's subprocess included, which
# fails that test), and the log is searched for reports as well.
#
#   bash .ci/asan.sh [extra pytest arguments]
#
# Environment: NNC_ASAN_VENV (default /tmp/nnc-asan-venv), NNC_ASAN_TREE
# (default /tmp/nnc-asan-tree).  Leak detection stays off: under CPython it
# reports interpreter noise; leaks are tested by
# tests/test_reliability.py instead.  allocator_may_return_null=1: a failed
# huge allocation returns NULL (numpy raises MemoryError, as without ASan)
# instead of aborting; tests of absurd sizes rely on it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${NNC_ASAN_VENV:-/tmp/nnc-asan-venv}"
tree="${NNC_ASAN_TREE:-/tmp/nnc-asan-tree}"
log="$tree.log"
start=$(date +%s)

rm -rf "$venv" "$tree"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q numpy pytest hypothesis scipy tqdm "setuptools>=77" "Cython>=3.0.10"

# The tracked and new (not ignored) files only: no build/ or in-place .so.
mkdir -p "$tree"
git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - | tar -xf - -C "$tree"

cd "$tree"
NNC_DEBUG=1 "$venv/bin/python" setup.py build_ext --inplace -j 2 > "$tree.build.log" 2>&1 \
    || { tail -50 "$tree.build.log"; exit 1; }
echo "asan.sh: ASan+UBSan build done in $(( $(date +%s) - start )) s"

status=0
LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1:check_initialization_order=1:allocator_may_return_null=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 PYTHONMALLOC=malloc \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/ "$@" 2>&1 | tee "$log" || status=$?
if grep -qE "ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer" "$log"; then
    echo "asan.sh: sanitizer report(s) found in $log:"
    grep -nE "ERROR: AddressSanitizer|runtime error:|SUMMARY: " "$log" | head -20
    status=1
fi
echo "asan.sh: finished in $(( $(date +%s) - start )) s with status $status"
exit "$status"
