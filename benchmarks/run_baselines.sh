#!/usr/bin/env bash
# The baseline sweep of issue #2 on a GPU: random, herding, k-center and forgetting on MNIST and
# CIFAR-10 at IPC 1/10/50, 5 seeds, ConvNet, the full 1000-epoch card. Resumable: rerun the same
# command after an interruption and only missing rows are trained.
#
#   benchmarks/run_baselines.sh DATA_ROOT RESULTS_DIR [DATASET ...]
#
# On the device machine a call carries at most 64 MiB, so MNIST (11.5 MB) and the JPEG-packed
# CIFAR-10 (56 MB) travel in separate calls, e.g. with .data/ holding one of them:
#   pip install --no-deps -e . && benchmarks/run_baselines.sh .data $OUT/lb mnist
set -euo pipefail
data_root=${1:?data root}
results=${2:?results directory}
shift 2
datasets=${*:-mnist cifar10}
for dataset in $datasets; do
  for method in random herding kcenter forgetting; do
    ddbench evaluate --method "$method" --protocol "$dataset-ipc1" "$dataset-ipc10" "$dataset-ipc50" \
      --data-root "$data_root" --results "$results" --no-progress
  done
done
ddbench leaderboard --results "$results" --out "$results/LEADERBOARD.md"
