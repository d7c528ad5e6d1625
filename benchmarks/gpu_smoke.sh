#!/usr/bin/env bash
# First call on a GPU machine: run every CUDA code path once on the bundled digits data (a few
# minutes), so device-specific breakage shows before the long runs. Nothing here is a figure to
# report. Usage on the device: pip install --no-deps -e . && benchmarks/gpu_smoke.sh $OUT/smoke
set -euo pipefail
out=${1:-/tmp/ddbench-smoke}
export DDBENCH_CACHE=${DDBENCH_CACHE:-$out/cache}
run() { echo "+ $*"; "$@" --device cuda --results "$out/lb" --no-progress; }
run ddbench evaluate --method random --epochs 50                       # engine: auto mode, vmap/loop timing on CUDA
run ddbench evaluate --method random --epochs 50 --batch-mode vmap --protocol digits-quick --arch convnetd2
run ddbench evaluate --method herding --epochs 50 --seeds 2            # real-data network + embedding on CUDA
run ddbench evaluate --method mtt --epochs 50 --seeds 2 --cfg iterations=5
run ddbench evaluate --method dd --epochs 50 --seeds 2 --cfg epochs=1
run ddbench evaluate --method mkdt --seeds 1 --cfg iterations=5 --cfg teacher_epochs=2
python benchmarks/bench_mtt.py --dataset digits --ipc 10 --syn-steps 5 --iters 2 --device cuda
python benchmarks/bench_experts.py --dataset digits --experts 3 --epochs 1 --device cuda
echo "smoke OK"
