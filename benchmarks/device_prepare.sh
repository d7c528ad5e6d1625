#!/usr/bin/env bash
# Before the device calls, on this machine (network to the package registries): fill the git-ignored .device/ folder
# that the calls carry (64 MiB in all): the data and wheels of ddbench's required packages other than torch and
# torchvision (the device has its own torch and no network) and of the Adversarial Robustness Toolbox (the adversarial
# cards'; pure Python, its own needs are on the device), at the versions installed here.
#
#   benchmarks/device_prepare.sh ../shared/data [.device]      # then carry: [".device"]  (CIFAR-10: calls 1-3)
#   DEVICE_DATA="mnist.npz fashion_mnist.npz" benchmarks/device_prepare.sh ../shared/data   # call 4 on the MNISTs
#   benchmarks/device_prepare.sh --wheels-only DEST            # wheels only (the rehearsal)
set -euo pipefail
wheels_only=0
if [[ "${1:-}" == "--wheels-only" ]]; then wheels_only=1; shift; dest=${1:?DEST}; else
  data=${1:?usage: device_prepare.sh DATA_ROOT [DEST]}; dest=${2:-.device}; fi
mkdir -p "$dest/wheels"
if (( ! wheels_only )); then
  rm -rf "$dest/data" && mkdir -p "$dest/data"  # only the files asked for: a call carries 64 MiB at most
  for f in ${DEVICE_DATA:-cifar10-jpeg.npz}; do cp "$data/$f" "$dest/data/"; done
fi
pins=$(python - <<'PY'
import importlib.metadata as m
print(" ".join(f"{d}=={m.version(d)}" for d in ("timm", "safetensors", "tabulate", "tqdm", "PyYAML", "huggingface_hub",
                                                 "adversarial-robustness-toolbox")))
PY
)
# shellcheck disable=SC2086
python -m pip download -q --no-deps --only-binary=:all: -d "$dest/wheels" $pins
du -sh "$dest"
