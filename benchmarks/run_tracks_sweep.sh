#!/usr/bin/env bash
# The rows of issue 23: random, herding and MTT (the leaderboard's reduced CPU budget) on the adversarial and privacy
# cards of MNIST, Fashion-MNIST and CIFAR-10 at IPC 1 and 10. Resumable like the leaderboard sweep: rerun after an
# interruption and only missing rows are trained. Cheapest cells first, so that a run cut short leaves whole tables:
# IPC 1 (random, then herding), IPC 10 adversarial, IPC 10 privacy (its 4 shadow networks per card are trained once
# and cached), then MTT. `--plan` as the third argument prints each step's plan instead; any other third argument is
# passed to every `ddbench evaluate` (e.g. "--device cuda", as the GPU campaign's call 4 does). A failed step is
# reported and the next one runs; the exit status is 1 if any step failed.
#
#   nice -n 19 benchmarks/run_tracks_sweep.sh DATA_ROOT RESULTS_DIR [--plan | "EXTRA ARGS"]
#   ddbench results merge RESULTS_DIR --into leaderboard
#
# TRACK_DATASETS (default "mnist fashion_mnist cifar10") limits the datasets (the device carries one or two);
# TRACK_CARDS, where set, replaces the card list with one step of every method on those cards (the campaign's dry run).
set -uo pipefail
command -v ddbench >/dev/null || { echo "ddbench is not on PATH: activate the project's environment (. .venv/bin/activate)" >&2; exit 2; }
data_root=${1:?data root}
results=${2:?results directory}
extra=${3:-}
failed=0
MTT_BUDGET=(--cfg mtt.num_experts=4 --cfg mtt.expert_train_epochs=22 --cfg mtt.iterations=300)
cards() { local ipc=$1 tracks=$2 out=() d t; for d in ${TRACK_DATASETS:-mnist fashion_mnist cifar10}; do for t in $tracks; do out+=("$d-ipc$ipc-$t"); done; done; echo "${out[@]}"; }
step() {
  local methods=$1 budget=(); shift
  [[ $methods == *mtt* ]] && budget=("${MTT_BUDGET[@]}")
  # IPC 10 on the CPU: the unroll's kept activations (about 19 GB on MNIST, more on CIFAR-10) would crowd a 24 GiB host,
  # and recomputing them is faster there (bench_mtt.py, RESULTS.md); the same set (a runtime option)
  [[ $methods == *mtt* && "$*" == *ipc10* && $extra != *cuda* ]] && budget+=(--cfg mtt.checkpoint=true)
  echo "== $(date -u +%FT%TZ) $methods $*"
  # shellcheck disable=SC2086
  ddbench evaluate --method "$methods" --protocol "$@" --data-root "$data_root" --results "$results" --no-progress \
    "${budget[@]}" $extra || { echo "!! step failed: $methods $*"; failed=$((failed + 1)); }
}
# shellcheck disable=SC2046,SC2086
if [[ -n ${TRACK_CARDS:-} ]]; then
  step random,herding,mtt $TRACK_CARDS
else
  step random $(cards 1 "adv privacy")
  step herding $(cards 1 "adv privacy")
  step random,herding $(cards 10 adv)
  step random,herding $(cards 10 privacy)
  step mtt $(cards 1 "adv privacy")
  step mtt $(cards 10 "adv privacy")
fi
echo "== $(date -u +%FT%TZ) done, $failed step(s) failed"
exit $(( failed > 0 ))
