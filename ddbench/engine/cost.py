"""Work estimates for `--plan`: FLOPs of a network's forward pass, counted by PyTorch's FlopCounterMode.

Training one image costs about three forward passes (forward, and a backward twice its size). When
no earlier run recorded a task's time, `--plan` turns FLOPs into hours at an assumed effective rate
per device type (stated in its output); a recorded wall time always wins over the estimate.
"""
from __future__ import annotations

import functools

import torch
from torch.utils.flop_counter import FlopCounterMode

from ddbench.models import create_network

TRAIN_FACTOR = 3.0  # forward + backward, in forward passes
# effective (not peak) rates for small-network training: a guess, stated wherever it is used
ASSUMED_FLOPS_PER_S = {"cuda": 20e12, "cpu": 0.2e12}


@functools.lru_cache(maxsize=256)
def forward_flops(arch: str, num_classes: int, in_chans: int, height: int, width: int) -> float:
    """FLOPs of one image's forward pass through a fresh `arch` (multiply-add = 2 FLOPs)."""
    model = create_network(arch, num_classes, in_chans, (height, width)).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, in_chans, height, width))
    return float(counter.get_total_flops())


def training_flops(arch: str, num_classes: int, in_chans: int, size: tuple[int, int], image_passes: float) -> float:
    """FLOPs of training on `image_passes` images (epochs × images)."""
    return TRAIN_FACTOR * image_passes * forward_flops(arch, num_classes, in_chans, int(size[0]), int(size[1]))


def hours(flops: float, device_type: str) -> float:
    return flops / ASSUMED_FLOPS_PER_S.get(device_type, ASSUMED_FLOPS_PER_S["cpu"]) / 3600.0


UNROLL_FACTOR = 6.0  # an unrolled step and the backward through it, in forward passes (an estimate)


def unrolled_flops(arch: str, num_classes: int, train, iterations: int, steps: int, batch: int) -> float:
    """FLOPs of trajectory matching: `iterations` × `steps` unrolled steps on `batch` synthetic images."""
    h, w = train.image_size
    return UNROLL_FACTOR * iterations * steps * batch * forward_flops(arch, num_classes, train.channels, int(h), int(w))
