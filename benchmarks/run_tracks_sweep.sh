#!/usr/bin/env bash
# The rows of issue 23: random, herding and MTT (the leaderboard's reduced CPU budget) on the adversarial and privacy
# cards of MNIST, Fashion-MNIST and CIFAR-10 at IPC 1 and 10. Resumable like the leaderboard sweep: rerun after an
# interruption and only missing rows are trained. Cheapest cells first, so that a run cut short leaves whole tables:
# IPC 1 (random, then herding), IPC 10 adversarial, IPC 10 privacy (its 4 shadow networks per card are trained once
# and cached), then MTT. `--plan` as the third argument prints each step's plan instead.
#
#   nice -n 19 benchmarks/run_tracks_sweep.sh DATA_ROOT RESULTS_DIR [--plan]
#   ddbench results merge RESULTS_DIR --into leaderboard
set -uo pipefail
data_root=${1:?data root}
results=${2:?results directory}
extra=${3:-}
MTT_BUDGET=(--cfg mtt.num_experts=4 --cfg mtt.expert_train_epochs=22 --cfg mtt.iterations=300)
cards() { local ipc=$1 tracks=$2 out=() d t; for d in mnist fashion_mnist cifar10; do for t in $tracks; do out+=("$d-ipc$ipc-$t"); done; done; echo "${out[@]}"; }
step() {
  local methods=$1 budget=(); shift
  [[ $methods == *mtt* ]] && budget=("${MTT_BUDGET[@]}")
  echo "== $(date -u +%FT%TZ) $methods $*"
  # shellcheck disable=SC2086
  ddbench evaluate --method "$methods" --protocol "$@" --data-root "$data_root" --results "$results" --no-progress \
    "${budget[@]}" $extra || echo "!! step failed: $methods $*"
}
# shellcheck disable=SC2046
{
  step random $(cards 1 "adv privacy")
  step herding $(cards 1 "adv privacy")
  step random,herding $(cards 10 adv)
  step random,herding $(cards 10 privacy)
  step mtt $(cards 1 "adv privacy")
  step mtt $(cards 10 "adv privacy")
}
echo "== $(date -u +%FT%TZ) done"
