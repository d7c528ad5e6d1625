#!/usr/bin/env bash
# Rehearse the lent GPU machine on this CPU: a fresh virtual environment that has torch and the common scientific
# stack (linked from the current environment) but none of ddbench's other packages and none of its optional ones
# (kornia, Ray, matplotlib, selenium), no network for pip (--no-index, proxies pointed at a closed port), ddbench
# installed from carried wheels without build isolation, then each campaign call in its --dry-run form.
# Exit 0 only if the install worked offline, the optional packages are absent and their steps were skipped with a
# reason, and every other step of every call passed. CI runs this (tests/test_campaign.py).
#
#   benchmarks/rehearse_device.sh [WORK_DIR]
#
# The device has torch 2.11 where this environment has the pinned 2.14.1: the install resolves no dependency
# (--no-deps), so the pin cannot refuse the machine's torch; only the version itself is not rehearsed here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
python -c 'import torch, ddbench' 2>/dev/null || {
  echo "rehearse_device.sh: \`python\` ($(command -v python)) cannot import torch and ddbench: activate the project's environment (. .venv/bin/activate)" >&2
  exit 2; }
src_site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

# 1. while the network is up: the wheels the device calls would carry
bash "$here/device_prepare.sh" --wheels-only "$work/carry" > "$work/prepare.log" 2>&1 || {
  echo "rehearse_device.sh: device_prepare.sh --wheels-only failed; its output is in $work/prepare.log" >&2; exit 1; }

# 2. the device's Python: torch and the scientific stack, nothing of ddbench's own
python -m venv --without-pip "$work/venv"
site=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
deny='^(ddbench|__editable__|_ddbench|timm|safetensors|tabulate|tqdm|yaml|_yaml|pyyaml|huggingface_hub|kornia|kornia_rs|ray|matplotlib|mpl_toolkits|selenium|art|adversarial_robustness_toolbox)([-_.].*)?$'
for entry in "$src_site"/*; do
  name=$(basename "$entry")
  lower=$(echo "$name" | tr '[:upper:]' '[:lower:]')
  [[ $lower =~ $deny ]] && continue
  [[ $lower == *.pth ]] && continue
  ln -s "$entry" "$site/$name"
done

# 3. network cut for everything that follows
export PIP_NO_INDEX=1 PIP_FIND_LINKS= PIP_EXTRA_INDEX_URL= PIP_CONFIG_FILE=/dev/null
export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
export PATH="$work/venv/bin:$PATH" VIRTUAL_ENV="$work/venv"
for module in kornia ray matplotlib selenium art timm ddbench; do
  if (cd "$work" && python -c "import $module" 2>/dev/null); then echo "rehearsal: $module imports before the install; the venv is not bare" >&2; exit 1; fi
done

# 4. the calls, offline, from a copy of the checkout (the device gets a copy too)
status=0
export DEVICE_WHEELS=$work/carry/wheels
for call in 1 2 3 4; do
  DDBENCH_CACHE=$work/cache bash "$here/gpu_campaign.sh" --dry-run "$call" "$work/call$call" > "$work/call$call.out" 2>&1 || true
  summary=$work/call$call/SUMMARY.txt
  echo "== call $call"
  cat "$summary"
  bad=$(grep -E '^[0-9]{2} ' "$summary" | grep -v -E ' rc=0 | skipped: needs (kornia|ray|matplotlib|selenium), ' || true)
  if [[ -n $bad ]]; then echo "rehearsal: call $call: $bad" >&2; status=1; fi
  [[ -f $work/call$call/campaign-call$call.tar.gz ]] || { echo "rehearsal: call $call left no archive" >&2; status=1; }
done
grep -q 'skipped: needs kornia' "$work/call1/SUMMARY.txt" || { echo "rehearsal: the MKDT smoke step was not skipped" >&2; status=1; }
grep -q 'ddbench: installed' "$work/call1/02-install.log" 2>/dev/null || grep -q 'ddbench: installed' "$work"/call1/*-install.log \
  || { echo "rehearsal: the offline install did not complete" >&2; status=1; }
echo "rehearsal: $([[ $status == 0 ]] && echo passed || echo FAILED) (work dir $work)"
exit $status
