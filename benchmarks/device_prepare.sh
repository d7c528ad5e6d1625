#!/usr/bin/env bash
# Before the device calls, on this machine (network to the package registries): fill the git-ignored .device/ folder
# that the calls carry (64 MiB in all): the CIFAR-10 data and wheels of ddbench's required packages other than torch
# and torchvision (the device has its own torch and no network), at the versions installed here.
#
#   benchmarks/device_prepare.sh ../shared/data [.device]      # then carry: [".device"]
#   benchmarks/device_prepare.sh --wheels-only DEST            # wheels only (the rehearsal)
set -euo pipefail
wheels_only=0
if [[ "${1:-}" == "--wheels-only" ]]; then wheels_only=1; shift; dest=${1:?DEST}; else
  data=${1:?usage: device_prepare.sh DATA_ROOT [DEST]}; dest=${2:-.device}; fi
mkdir -p "$dest/wheels"
if (( ! wheels_only )); then
  mkdir -p "$dest/data" && cp "$data/cifar10-jpeg.npz" "$dest/data/"
fi
pins=$(python - <<'PY'
import importlib.metadata as m
print(" ".join(f"{d}=={m.version(d)}" for d in ("timm", "safetensors", "tabulate", "tqdm", "PyYAML", "huggingface_hub")))
PY
)
# shellcheck disable=SC2086
python -m pip download -q --no-deps --only-binary=:all: -d "$dest/wheels" $pins
du -sh "$dest"
