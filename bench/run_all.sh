#!/usr/bin/env bash
# Runs the Python benchmarks at 2 threads, one after the other, and keeps the
# whole output in bench/results/<date>.log, every measured row unfiltered.
# Each Python benchmark also writes its rows as JSON to
# bench/results/<date>-<name>.json and its standard error (warnings of the
# ONNX exporter, or the message of a failed output check) to
# bench/results/<date>-<name>.err; a benchmark that fails is reported in the
# log with the end of its .err, and the script then exits with status 1.
# bench/results/ is not tracked.  The results page and its chart come from
# the JSON files and the log's header (machine, CPU flags, versions, and the
# C harness's peak and bandwidths when the run includes `c`; matplotlib for
# the chart):
#   python bench/report.py bench/results/<date>-*.json --log bench/results/<date>.log > bench/RESULTS.md
#   python bench/chart.py bench/results/<date>-*.json --log bench/results/<date>.log -o bench/results.png
# Needs the in-place build of this tree and the optional bench dependencies:
#   pip install torch==2.13.0 onnxruntime onnx
#
#   bash bench/run_all.sh                 # every benchmark but the sweep
#   bash bench/run_all.sh conv pool       # only bench_conv.py and bench_pool.py
#   bash bench/run_all.sh sweep           # the shape sweep (bench_sweep.py) at 1 and 2 threads: 30-40 min,
#                                         # so not in the default list
#   bash bench/run_all.sh c               # the C harness (bench/c): conv and pool families, and the
#                                         # recurrent GEMM shapes of bench_rnn.py (batch 1: W_h against a read of
#                                         # its bytes, a gate block of the projection; batch 32: a thread's
#                                         # step and projection)
set -uo pipefail
cd "$(dirname "$0")/.."
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE   # they slow a current OpenBLAS (see env notes)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
declare -A args=([gemm]="--threads 1,2" [conv]="--threads 2" [conv_scaling]="" [pool]="--threads 2" [rnn]="--threads 2 --loaded"
                 [convrnn]="--threads 2" [densenet]="--threads 2" [models]="--threads 2 --loaded"
                 [import]="--threads 1 2" [checkpoint]="--threads 2" [seq]="--threads 2"
                 [sweep]="--threads 1,2")
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(gemm conv conv_scaling pool rnn convrnn densenet models import checkpoint seq c)
mkdir -p bench/results
day="bench/results/$(date -u +%Y-%m-%d)"
log="$day.log"
{
    failed=0
    echo "# $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -m), $(nproc) CPUs:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    # the SIMD flags and the memory, for the header of the results page (bench/report.py)
    echo "# cpu flags:$(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2 | tr ' ' '\n' \
        | grep -E '^(sse4_2|avx|avx2|fma|f16c|avx512.*|amx.*)$' | tr '\n' ' ' | sed 's/ $//; s/^/ /')"
    echo "# memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    python -c "import nnc; nnc.show_config()"
    python -c "import torch, onnxruntime; print('torch', torch.__version__, '| onnxruntime', onnxruntime.__version__)"
    for name in "${names[@]}"; do
        if [ "$name" = c ]; then
            echo
            echo "\$ make -C bench/c -s && bench/c/nnc_bench --isa avx512 --threads 1,2 --family conv|pool"
            make -C bench/c -s >/dev/null || { echo "FAILED: make -C bench/c"; failed=1; continue; }
            for fam in conv pool; do
                bench/c/nnc_bench --isa avx512 --threads 1,2 --family $fam || { echo "FAILED: nnc_bench --family $fam"; failed=1; }
            done
            rnn_shapes="1x512x256:nnp 1x1024x256:nnp 100x128x128:nt 16x1024x256:nnp 1600x1024x128:nnp"
            echo "\$ bench/c/nnc_bench --isa avx512 --threads 1,2 --family gemm --reps 100 --shapes '$rnn_shapes'"
            bench/c/nnc_bench --isa avx512 --threads 1,2 --family gemm --reps 100 --shapes "$rnn_shapes" \
                || { echo "FAILED: nnc_bench --family gemm"; failed=1; }
            continue
        fi
        echo
        echo "\$ python bench/bench_$name.py ${args[$name]} --json $day-$name.json"
        python "bench/bench_$name.py" ${args[$name]} --json "$day-$name.json" 2>"$day-$name.err"
        rc=$?
        if [ $rc -ne 0 ]; then
            echo "FAILED: bench_$name.py exited with status $rc; the end of $day-$name.err:"
            tail -n 20 "$day-$name.err"
            failed=1
        fi
    done
    exit $failed
} | tee -a "$log"
