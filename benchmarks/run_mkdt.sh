#!/usr/bin/env bash
# MKDT on a GPU (issue #4): teacher → 2% distilled set → probe on CIFAR-10 with 1/5/10/50% labels,
# MKDT beside its baselines. Every stage is cached under DDBENCH_CACHE and the result store is
# resumable, so the run can span several device calls (each at most 10 minutes):
#
#   benchmarks/run_mkdt.sh DATA_ROOT RESULTS_DIR [extra ddbench flags]
#   e.g. DDBENCH_CACHE=.cache benchmarks/run_mkdt.sh .data $OUT/lb --cfg teacher_epochs=50 --cfg num_experts=20
#
# State the teacher epochs, experts and iterations used beside the figures (the paper: a mix-bt
# teacher, 100 experts, 5,000 iterations).
set -euo pipefail
data_root=${1:?data root}
results=${2:?results directory}
shift 2
ddbench evaluate --method mkdt --protocol cifar10-ssl-2pct --data-root "$data_root" --results "$results" --no-progress "$@"
ddbench leaderboard --results "$results" --out "$results/LEADERBOARD.md"
