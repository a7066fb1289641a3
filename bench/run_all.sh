#!/usr/bin/env bash
# Runs the Python benchmarks at 2 threads, one after the other, and keeps the
# whole output in bench/results/<date>.log (the source of bench/RESULTS.md).
# Needs the in-place build of this tree and the optional bench dependencies:
#   pip install torch==2.13.0 onnxruntime onnx
#
#   bash bench/run_all.sh                 # every benchmark
#   bash bench/run_all.sh conv pool       # only bench_conv.py and bench_pool.py
#   bash bench/run_all.sh c               # the C harness (bench/c): conv and pool families, and the
#                                         # recurrent GEMM shapes of bench_rnn.py (batch 1: W_h against a read of
#                                         # its bytes, a gate block of the projection; batch 32: a thread's
#                                         # step and projection)
set -uo pipefail
cd "$(dirname "$0")/.."
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE   # they slow a current OpenBLAS (see env notes)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
declare -A args=([gemm]="--threads 1,2" [conv]="--threads 2" [conv_scaling]="" [pool]="--threads 2" [rnn]="--threads 2 --loaded"
                 [convrnn]="--threads 2" [densenet]="--threads 2" [models]="--threads 2 --loaded")
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(gemm conv conv_scaling pool rnn convrnn densenet models c)
mkdir -p bench/results
log="bench/results/$(date -u +%Y-%m-%d).log"
{
    echo "# $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -m), $(nproc) CPUs:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    python -c "import nnc; nnc.show_config()"
    python -c "import torch, onnxruntime; print('torch', torch.__version__, '| onnxruntime', onnxruntime.__version__)"
    for name in "${names[@]}"; do
        if [ "$name" = c ]; then
            echo
            echo "\$ make -C bench/c -s && bench/c/nnc_bench --isa avx512 --threads 1,2 --family conv|pool"
            make -C bench/c -s >/dev/null && for fam in conv pool; do
                bench/c/nnc_bench --isa avx512 --threads 1,2 --family $fam --no-peak
            done
            rnn_shapes="1x512x256:nnp 1x1024x256:nnp 100x128x128:nt 16x1024x256:nnp 1600x1024x128:nnp"
            echo "\$ bench/c/nnc_bench --isa avx512 --threads 1,2 --family gemm --reps 100 --shapes '$rnn_shapes'"
            bench/c/nnc_bench --isa avx512 --threads 1,2 --family gemm --reps 100 --no-peak --shapes "$rnn_shapes"
            continue
        fi
        echo
        echo "\$ python bench/bench_$name.py ${args[$name]}"
        python "bench/bench_$name.py" ${args[$name]} 2>&1 | grep -v -i "warning\|torch.onnx.export\|_generic_rnn"
    done
} | tee -a "$log"
