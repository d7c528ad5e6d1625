#!/usr/bin/env bash
# Every measurement that needs a GPU, most valuable first, in at most ~10 minutes on one H100/H200.
# Writes each step's log under OUT (OUT/NN-name.log) and a summary OUT/SUMMARY.txt of what ran, how
# long it took and its exit code; a failing step is recorded and the campaign goes on.
#
#   benchmarks/gpu_campaign.sh OUT [DATA_ROOT]      # on the device: DATA_ROOT holds cifar10-jpeg.npz
#   benchmarks/gpu_campaign.sh --dry-run OUT        # the same steps on the CPU with tiny settings (CI runs this)
#
# On the device (carry a git-ignored copy of the data, e.g. .data/): pip install --no-deps -e . &&
#   benchmarks/gpu_campaign.sh $OUT/campaign .data
set -uo pipefail
dry=0
if [[ "${1:-}" == "--dry-run" ]]; then dry=1; shift; fi
out=${1:?usage: gpu_campaign.sh [--dry-run] OUT [DATA_ROOT]}
data=${2:-${DDBENCH_DATA:-}}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
export DDBENCH_CACHE=${DDBENCH_CACHE:-$out/cache}
export DDBENCH_RESULTS=$out/results
summary=$out/SUMMARY.txt
echo "campaign $(date -u +%FT%TZ) dry_run=$dry host=$(hostname)" > "$summary"
python - >> "$summary" 2>&1 <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
EOF

if (( dry )); then
  dev=cpu; ds=digits; ipcs="10"; card=digits-quick; data_flag=()
  eval_args=(--seeds 2 --epochs 3 --modes auto)
  mtt_args=(--syn-steps 3 --iters 1); experts_args=(--experts 2 --epochs 1)
  reduced_cfg=(--cfg num_experts=2 --cfg expert_train_epochs=4 --cfg iterations=3 --cfg syn_steps=3 --cfg expert_epochs=2
               --cfg max_start_epoch=2)
  reduced_eval=(--seeds 2 --epochs 3)
  precision=(--cards digits-quick --seeds 2 --epochs 3)
  xcard=digits-xarch; xarch_args=(--seeds 1 --epochs 3)
else
  dev=cuda; ds=cifar10; ipcs="10 50"; card=cifar10-ipc10; data_flag=(--data-root "$data")
  eval_args=(--seeds 5 --epochs 1000 --modes auto loop)
  mtt_args=(--syn-steps 30 --iters 10); experts_args=(--experts 10 --epochs 2)
  # issue 12's reduced-budget MTT: 4 experts × 22 epochs, 900 iterations, no ZCA, lr_img 1000, lr_lr 1e-5,
  # starting lr 0.01, syn_steps 30, expert_epochs 2, max_start_epoch 20; then the full card
  reduced_cfg=(--cfg num_experts=4 --cfg expert_train_epochs=22 --cfg iterations=900 --cfg zca=false --cfg lr_img=1000
               --cfg lr_lr=1e-5 --cfg lr_teacher=0.01 --cfg syn_steps=30 --cfg expert_epochs=2 --cfg max_start_epoch=20)
  reduced_eval=()
  precision=(--cards cifar10-ipc1 cifar10-ipc10 --seeds 5)
  xcard=cifar10-ipc10-xarch; xarch_args=(--seeds 5)
fi
# after the 10-minute list, if the call's time allows: the cross-architecture card (issue 11)
limit() { if (( dry )); then "$@"; else timeout "${XARCH_SECONDS:-240}" "$@"; fi; }

step=0
run() {  # run NAME CMD...: log to OUT/NN-NAME.log, record time and exit code, never stop the campaign
  local name=$1; shift
  step=$((step + 1))
  local log; log=$(printf '%s/%02d-%s.log' "$out" "$step" "$name")
  local t0=$SECONDS
  echo "+ $*" > "$log"
  "$@" >> "$log" 2>&1
  local rc=$?
  printf '%02d %-22s rc=%d %5ds  %s\n' "$step" "$name" "$rc" $((SECONDS - t0)) "$log" | tee -a "$summary"
}

if (( dry )); then
  run smoke ddbench evaluate --method random --epochs 3 --seeds 2 --device cpu --no-progress
else
  run smoke bash "$here/gpu_smoke.sh" "$out/smoke"
fi
run bench_evaluate python "$here/bench_evaluate.py" --dataset "$ds" "${data_flag[@]}" --ipc $ipcs --device "$dev" "${eval_args[@]}"
run bench_mtt python "$here/bench_mtt.py" --dataset "$ds" --ipc $ipcs --device "$dev" "${mtt_args[@]}"
run bench_experts python "$here/bench_experts.py" --dataset "$ds" "${data_flag[@]}" --device "$dev" "${experts_args[@]}"
reduced=("${reduced_cfg[@]}" "${reduced_eval[@]}")
run mtt_reduced ddbench evaluate --method mtt --protocol "$card" "${reduced[@]}" "${data_flag[@]}" --device "$dev" --no-progress
# the random-real set the distillation started from: MTT's step-0 snapshot (same seed, same start images, experts
# reused), evaluated as a set of its own ("mtt-start"), never recorded as an "mtt" row
start_set() {
  ddbench distill --method mtt --protocol "$card" "${reduced_cfg[@]}" --cfg iterations=1 --snapshots 0 "${data_flag[@]}" \
    --device "$dev" --no-progress --out "$out/mtt-start.safetensors" &&
  ddbench evaluate --distilled "$out/mtt-start-step0.safetensors" --claim mtt-start --protocol "$card" "${reduced_eval[@]}" \
    "${data_flag[@]}" --device "$dev" --no-progress
}
run mtt_reduced_start start_set
run bench_precision python "$here/bench_precision.py" "${precision[@]}" "${data_flag[@]}" --device "$dev"
run xarch_random limit ddbench evaluate --method random --protocol "$xcard" "${xarch_args[@]}" "${data_flag[@]}" --device "$dev" \
    --no-progress
run xarch_mtt_reduced limit ddbench evaluate --method mtt --protocol "$xcard" "${reduced[@]}" "${data_flag[@]}" --device "$dev" \
    --no-progress
echo "done $(date -u +%FT%TZ)" >> "$summary"
cat "$summary"
