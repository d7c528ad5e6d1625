#!/usr/bin/env bash
# The rows of issue 23: random, herding and MTT (the leaderboard's reduced CPU budget) on the adversarial and privacy
# cards of MNIST, Fashion-MNIST and CIFAR-10 at IPC 1 and 10. Resumable like the leaderboard sweep: rerun after an
# interruption and only missing rows are trained. `--plan` as the third argument prints each step's plan instead.
#
#   nice -n 19 benchmarks/run_tracks_sweep.sh DATA_ROOT RESULTS_DIR [--plan]
#   ddbench results merge RESULTS_DIR --into leaderboard
set -uo pipefail
data_root=${1:?data root}
results=${2:?results directory}
extra=${3:-}
MTT_BUDGET=(--cfg mtt.num_experts=4 --cfg mtt.expert_train_epochs=22 --cfg mtt.iterations=300)
for dataset in mnist fashion_mnist cifar10; do
  for track in adv privacy; do
    cards=("$dataset-ipc1-$track" "$dataset-ipc10-$track")
    echo "== $(date -u +%FT%TZ) random,herding,mtt ${cards[*]}"
    ddbench evaluate --method random,herding,mtt --protocol "${cards[@]}" --data-root "$data_root" --results "$results" \
      --no-progress "${MTT_BUDGET[@]}" $extra || echo "!! step failed: ${cards[*]}"
  done
done
echo "== $(date -u +%FT%TZ) done"
