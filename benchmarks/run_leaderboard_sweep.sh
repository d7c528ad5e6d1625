#!/usr/bin/env bash
# The CPU leaderboard sweep of issue #19, in the order that fills the most cells first: random at
# IPC 1 and 10 (no selection network), then the coresets dataset by dataset (one selection network
# per dataset, shared by herding and k-center), then IPC 50. Every step is one resumable
# `ddbench evaluate`: rerun the script after an interruption and only missing rows are trained.
#
#   nice -n 19 benchmarks/run_leaderboard_sweep.sh DATA_ROOT RESULTS_DIR [--plan]
#
# Then merge into the committed store: ddbench results merge RESULTS_DIR --into leaderboard
set -uo pipefail
data_root=${1:?data root}
results=${2:?results directory}
extra=${3:-}
step() {  # step METHOD CARD...
  local method=$1; shift
  echo "== $(date -u +%FT%TZ) $method ${*}"
  ddbench evaluate --method "$method" --protocol "$@" --data-root "$data_root" --results "$results" --no-progress $extra \
    || echo "!! step failed: $method $*"
}
step random mnist-ipc1 fashion_mnist-ipc1 cifar10-ipc1
step random fashion_mnist-ipc10 cifar10-ipc10 mnist-ipc10
for dataset in mnist fashion_mnist cifar10; do
  for method in herding kcenter forgetting; do
    step "$method" "$dataset-ipc1" "$dataset-ipc10"
  done
done
step random mnist-ipc50 fashion_mnist-ipc50 cifar10-ipc50
echo "== $(date -u +%FT%TZ) done"
