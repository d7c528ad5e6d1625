#!/usr/bin/env bash
# The GPU campaign as self-contained device calls, each one command line (README, "On a GPU"):
#
#   call 1 (~6.5 min on an H100 by the reference timings): offline install, CUDA smoke, evaluation speed at IPC 10
#          and 50, MTT iteration speed and memory, expert speed, bf16 against fp32
#   call 2 (~9.5 min): the reduced-budget MTT reproduction on cifar10-ipc10 (4 experts x 22 epochs, 900 iterations;
#          expect about 55 %) and the random-real set it started from (its step-0 snapshot, `--claim mtt-start`)
#   call 3 (optional, ~5 min): cross-architecture rows (random, and MTT's set if call 2's cache is still there)
#   call 4 (~9 min, issue 23's rows): benchmarks/run_tracks_sweep.sh on the adversarial and privacy cards of the
#          datasets carried in DATA_ROOT (mnist.npz, fashion_mnist.npz, cifar10-jpeg.npz), cheapest first; its rows
#          accumulate in the cache across the calls of one warm machine, so a second call 4 adds only missing rows
# README's "On a GPU" gives the minutes per step.
#
#   benchmarks/gpu_campaign.sh CALL OUT DATA_ROOT            # on the device; DATA_ROOT holds cifar10-jpeg.npz
#   benchmarks/gpu_campaign.sh --dry-run CALL OUT            # the same steps on the CPU, tiny settings (CI runs these)
#
# Each step has its own time cap and the call a budget (CALL_SECONDS; steps that no longer fit are skipped and
# SUMMARY.txt says so). Output: OUT/NN-step.log for every step, OUT/SUMMARY.txt, OUT/results/ (rows), and all of it
# as one small archive OUT/campaign-callN.tar.gz. The cache lives outside OUT, in a temporary folder kept across the
# calls of one warm machine (DDBENCH_CACHE, default ${TMPDIR:-/tmp}/ddbench-device-cache), so experts are not sent
# back with the logs. Output is unbuffered and tracebacks are full (PYTHONUNBUFFERED, PYTHONFAULTHANDLER, DDBENCH_DEBUG).
set -uo pipefail
dry=0
if [[ "${1:-}" == "--dry-run" ]]; then dry=1; shift; fi
call=${1:?usage: gpu_campaign.sh [--dry-run] CALL(1|2|3|4) OUT [DATA_ROOT]}
out=${2:?usage: gpu_campaign.sh [--dry-run] CALL(1|2|3|4) OUT [DATA_ROOT]}
data=${3:-${DDBENCH_DATA:-}}
[[ $call =~ ^[1234]$ ]] || { echo "gpu_campaign.sh: CALL must be 1, 2, 3 or 4, not '$call'" >&2; exit 2; }
(( dry )) || [[ -n $data ]] || { echo "gpu_campaign.sh: DATA_ROOT is needed on the device (it holds cifar10-jpeg.npz)" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1 DDBENCH_DEBUG=1
export DDBENCH_CACHE=${DDBENCH_CACHE:-${TMPDIR:-/tmp}/ddbench-device-cache}
export DDBENCH_RESULTS=$out/results
summary=$out/SUMMARY.txt
budget_default=(0 420 580 300 540)  # seconds per call on the device: under the 10-minute limit per command
budget=${CALL_SECONDS:-${budget_default[$call]}}
(( dry )) && budget=${CALL_SECONDS:-1800}
began=$SECONDS
echo "campaign call $call $(date -u +%FT%TZ) dry_run=$dry budget=${budget}s host=$(hostname) cache=$DDBENCH_CACHE" > "$summary"

if (( dry )); then
  dev=cpu; ds=digits; ipcs="10"; card=digits-quick; data_flag=(); xcard=digits-xarch
  eval_args=(--seeds 2 --epochs 3 --modes auto); mtt_args=(--syn-steps 3 --iters 1); experts_args=(--experts 2 --epochs 1)
  reduced_cfg=(--cfg num_experts=2 --cfg expert_train_epochs=4 --cfg iterations=3 --cfg syn_steps=3 --cfg expert_epochs=2
               --cfg max_start_epoch=2)
  short=(--seeds 2 --epochs 3); precision=(--cards digits-quick --seeds 2 --epochs 3); xarch_args=(--seeds 1 --epochs 3)
  smoke=(--epochs 3 --seeds 2)
  tracks_env=(TRACK_CARDS="digits-adv-quick digits-privacy-quick"); tracks_root=$out
  tracks_extra="--device cpu --seeds 1 --epochs 3 --cfg herding.embed_epochs=1 --cfg mtt.iterations=2 --cfg mtt.num_experts=2 --cfg mtt.expert_train_epochs=4 --cfg mtt.syn_steps=3 --cfg mtt.expert_epochs=2 --cfg mtt.max_start_epoch=2"
else
  dev=cuda; ds=cifar10; ipcs="10 50"; card=cifar10-ipc10; data_flag=(--data-root "$data"); xcard=cifar10-ipc10-xarch
  eval_args=(--seeds 3 --epochs 1000 --modes auto); mtt_args=(--syn-steps 30 --iters 10); experts_args=(--experts 4 --epochs 2)
  # issue 12's reduced-budget MTT: 4 experts x 22 epochs, 900 iterations, no ZCA, lr_img 1000, lr_lr 1e-5,
  # starting lr 0.01, syn_steps 30, expert_epochs 2, max_start_epoch 20; evaluated on the full card
  reduced_cfg=(--cfg num_experts=4 --cfg expert_train_epochs=22 --cfg iterations=900 --cfg zca=false --cfg lr_img=1000
               --cfg lr_lr=1e-5 --cfg lr_teacher=0.01 --cfg syn_steps=30 --cfg expert_epochs=2 --cfg max_start_epoch=20)
  short=(); precision=(--cards cifar10-ipc10 --seeds 5); xarch_args=(--seeds 5)
  smoke=(--epochs 50 --seeds 2)
  tracks_datasets=""  # the datasets whose files were carried
  for f in mnist.npz fashion_mnist.npz cifar10-jpeg.npz; do [[ -f $data/$f ]] && tracks_datasets+=" ${f%%[.-]*}"; done
  tracks_env=(TRACK_DATASETS="${TRACK_DATASETS:-${tracks_datasets# }}"); tracks_root=$data; tracks_extra="--device cuda"
fi

step=0
run() {  # run NAME CAP_SECONDS CMD...: capped, logged, timed; never stops the call; skipped when the budget is spent
  local name=$1 cap=$2; shift 2
  (( dry )) && cap=$((cap * 10))  # a dry run on a busy CPU is slower than the device: its caps only catch hangs
  step=$((step + 1))
  local log; log=$(printf '%s/%02d-%s.log' "$out" "$step" "$name")
  local left=$((budget - (SECONDS - began)))
  if (( left < 20 )); then
    printf '%02d %-20s skipped for time (%ds of the %ds budget left, cap %ds)\n' "$step" "$name" "$left" "$budget" "$cap" | tee -a "$summary"
    return
  fi
  (( cap > left )) && cap=$left
  local t0=$SECONDS
  echo "+ $*" > "$log"
  timeout --kill-after=10 "$cap" "$@" >> "$log" 2>&1
  local rc=$?
  local note=""; (( rc == 124 || rc == 137 )) && note=" (stopped at its ${cap}s cap)"
  printf '%02d %-20s rc=%d %5ds%s  %s\n' "$step" "$name" "$rc" $((SECONDS - t0)) "$note" "$(basename "$log")" | tee -a "$summary"
}
needs() {  # needs MODULE NAME CAP CMD...: run the step only where the optional package imports
  local module=$1; shift
  if python -c "import $module" 2>/dev/null; then run "$@"; else
    step=$((step + 1)); printf '%02d %-20s skipped: needs %s, not installed here\n' "$step" "$1" "$module" | tee -a "$summary"
  fi
}
on=(--device "$dev" --no-progress)
sets=$DDBENCH_CACHE/campaign  # call 2's sets, for call 3 on the same warm machine
mkdir -p "$sets"

wheels=${DEVICE_WHEELS:-$repo/.device/wheels}
if [[ -d $wheels ]]; then  # offline: missing dependencies from the carried wheels, then ddbench without build isolation
  run install 120 python "$here/device_install.py" "$wheels" "$repo"
fi
run environment 60 python "$here/device_env.py"
case $call in
1)
  run smoke_random 60 ddbench evaluate --method random "${smoke[@]}" "${on[@]}"
  run smoke_vmap 60 ddbench evaluate --method random "${smoke[@]}" --batch-mode vmap --protocol digits-quick --arch convnetd2 "${on[@]}"
  run smoke_herding 60 ddbench evaluate --method herding "${smoke[@]}" "${on[@]}"
  run smoke_mtt 60 ddbench evaluate --method mtt "${smoke[@]}" --cfg iterations=5 "${on[@]}"
  run smoke_dd 60 ddbench evaluate --method dd "${smoke[@]}" --cfg epochs=1 "${on[@]}"
  needs kornia smoke_mkdt 90 ddbench evaluate --method mkdt --seeds 1 --cfg iterations=5 --cfg teacher_epochs=2 "${on[@]}"
  run bench_evaluate 150 python "$here/bench_evaluate.py" --dataset "$ds" "${data_flag[@]}" --ipc $ipcs --device "$dev" "${eval_args[@]}"
  run bench_mtt 60 python "$here/bench_mtt.py" --dataset "$ds" --ipc $ipcs --device "$dev" "${mtt_args[@]}"
  run bench_experts 45 python "$here/bench_experts.py" --dataset "$ds" "${data_flag[@]}" --device "$dev" "${experts_args[@]}"
  run bench_precision 90 python "$here/bench_precision.py" "${precision[@]}" "${data_flag[@]}" --device "$dev"
  ;;
2)
  # the experts and the random-real set the distillation starts from (MTT's step-0 snapshot, same seed and images),
  # evaluated first; then the 900 iterations on those experts (cached in the temporary cache), evaluated as "mtt"
  run mtt_experts_start 200 ddbench distill --method mtt --protocol "$card" "${reduced_cfg[@]}" --cfg iterations=1 \
      --snapshots 0 "${data_flag[@]}" --out "$sets/mtt-start.safetensors" "${on[@]}"
  run mtt_start_evaluate 45 ddbench evaluate --distilled "$sets/mtt-start-step0.safetensors" --claim mtt-start \
      --protocol "$card" "${short[@]}" "${data_flag[@]}" "${on[@]}"
  run mtt_distill 420 ddbench distill --method mtt --protocol "$card" "${reduced_cfg[@]}" "${data_flag[@]}" \
      --out "$sets/mtt.safetensors" "${on[@]}"
  run mtt_evaluate 45 ddbench evaluate --method mtt --protocol "$card" "${reduced_cfg[@]}" "${short[@]}" "${data_flag[@]}" \
      "${on[@]}"
  ;;
3)
  run xarch_random 150 ddbench evaluate --method random --protocol "$xcard" "${xarch_args[@]}" "${data_flag[@]}" "${on[@]}"
  if [[ -f $sets/mtt.safetensors ]]; then  # call 2 ran on this machine while it stayed warm
    run xarch_mtt 150 ddbench evaluate --distilled "$sets/mtt.safetensors" --claim mtt --protocol "$xcard" \
        "${xarch_args[@]}" "${data_flag[@]}" "${on[@]}"
  else
    step=$((step + 1)); printf '%02d %-20s skipped: no call-2 set in %s (the machine was released)\n' "$step" xarch_mtt "$sets" | tee -a "$summary"
  fi
  ;;
4)
  # issue 23's rows, cheapest cells first; the store lives in the cache (kept while the machine is warm) and is copied
  # into OUT/results after the step, so a second call 4 on the same machine trains only the rows still missing
  tracks_store=$DDBENCH_CACHE/tracks-results
  echo "tracks: ${tracks_env[*]} store=$tracks_store" >> "$summary"
  run tracks $((budget - 30)) env "${tracks_env[@]}" bash "$here/run_tracks_sweep.sh" "$tracks_root" "$tracks_store" "$tracks_extra"
  rows=0
  if [[ -f $tracks_store/results.jsonl ]]; then
    mkdir -p "$DDBENCH_RESULTS" && cp "$tracks_store/results.jsonl" "$DDBENCH_RESULTS/" && rows=$(wc -l < "$tracks_store/results.jsonl")
  fi
  echo "tracks: $rows rows in the store" >> "$summary"
  ;;
esac
echo "done $(date -u +%FT%TZ) after $((SECONDS - began))s" >> "$summary"
tar -czf "$out/campaign-call$call.tar.gz" -C "$out" --exclude='*.tar.gz' --exclude='*.safetensors' . 2>/dev/null
cat "$summary"
