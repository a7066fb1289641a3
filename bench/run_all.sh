#!/usr/bin/env bash
# Runs every Python benchmark at 2 threads, one after the other, and keeps the
# whole output in bench/results/<date>.log (the source of bench/RESULTS.md).
# Needs the optional bench dependencies: pip install torch==2.13.0 onnxruntime onnx
#
#   bash bench/run_all.sh
set -uo pipefail
cd "$(dirname "$0")/.."
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE   # they slow a current OpenBLAS (see env notes)
mkdir -p bench/results
log="bench/results/$(date -u +%Y-%m-%d).log"
{
    echo "# $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -m), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    python -c "import nnc; nnc.show_config()"
    python -c "import torch, onnxruntime; print('torch', torch.__version__, '| onnxruntime', onnxruntime.__version__)"
    for cmd in "bench/bench_gemm.py --threads 1,2" \
               "bench/bench_conv.py --threads 2" \
               "bench/bench_pool.py --threads 2" \
               "bench/bench_rnn.py --threads 2 --loaded" \
               "bench/bench_convrnn.py --threads 2" \
               "bench/bench_densenet.py --threads 2" \
               "bench/bench_models.py --threads 2"; do
        echo
        echo "\$ python $cmd"
        python $cmd 2>&1 | grep -v -i "warning"
    done
} | tee "$log"
