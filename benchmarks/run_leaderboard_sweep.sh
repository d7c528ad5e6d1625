#!/usr/bin/env bash
# The CPU leaderboard sweep of issue #19, in the order that fills the most cells first: random at IPC 1 and 10
# (no selection network), then the coresets dataset by dataset (one selection network per dataset, shared by
# herding and k-center), then MTT at a reduced, declared budget on MNIST and Fashion-MNIST, DD's native
# random-init card, and IPC 50. Every step is one resumable `ddbench evaluate`: rerun the script after an
# interruption and only missing rows are trained. `--plan` as the third argument prints each step's plan instead.
#
#   nice -n 19 benchmarks/run_leaderboard_sweep.sh DATA_ROOT RESULTS_DIR [--plan]
#
# Then merge into the committed store: ddbench results merge RESULTS_DIR --into leaderboard
set -uo pipefail
command -v ddbench >/dev/null || { echo "ddbench is not on PATH: activate the project's environment (. .venv/bin/activate)" >&2; exit 2; }
data_root=${1:?data root}
results=${2:?results directory}
extra=${3:-}
# MTT's reduced CPU budget (shown in every row's method_config): 4 experts x 22 epochs, 300 iterations
MTT_BUDGET=(--cfg num_experts=4 --cfg expert_train_epochs=22 --cfg iterations=300)
step() {  # step METHOD CARD... [-- EXTRA FLAGS]
  local method=$1; shift
  local cards=() flags=()
  while (($#)) && [[ $1 != -- ]]; do cards+=("$1"); shift; done
  (($#)) && shift && flags=("$@")
  echo "== $(date -u +%FT%TZ) $method ${cards[*]} ${flags[*]}"
  ddbench evaluate --method "$method" --protocol "${cards[@]}" --data-root "$data_root" --results "$results" \
    --no-progress "${flags[@]}" $extra || echo "!! step failed: $method ${cards[*]}"
}
step random mnist-ipc1 fashion_mnist-ipc1 cifar10-ipc1
step random fashion_mnist-ipc10 cifar10-ipc10 mnist-ipc10
for dataset in mnist fashion_mnist cifar10; do
  for method in herding kcenter forgetting; do
    step "$method" "$dataset-ipc1" "$dataset-ipc10"
  done
done
step mtt mnist-ipc1 mnist-ipc10 fashion_mnist-ipc1 fashion_mnist-ipc10 -- "${MTT_BUDGET[@]}"
step dd mnist-dd-native
step random mnist-ipc50 fashion_mnist-ipc50 cifar10-ipc50
for method in herding kcenter forgetting; do
  step "$method" mnist-ipc50 fashion_mnist-ipc50 cifar10-ipc50
done
echo "== $(date -u +%FT%TZ) done"
