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
# Effective (not peak) forward rates, stated wherever they are used. CPU: fitted on this project's 2-core machine
# from measured evaluation rows (benchmarks/calibrate_plan.py, RESULTS.md); CUDA: a guess until a GPU run measures it.
ASSUMED_FLOPS_PER_S = {"cuda": 20e12, "cpu": 0.38e12}
# An evaluation network trains on tiny batches with DSA augmentation: one trained image then costs more than the
# three forward passes of its arithmetic. CPU: fitted at the rate above and STEP_SECONDS on idle-host networks made
# with the CLI's allocator setting (benchmarks/calibrate_plan.py, RESULTS.md: 6.4; 10 before the setting); CUDA
# keeps the arithmetic.
EVAL_TRAIN_FACTOR = {"cuda": 3.0, "cpu": 6.4}
# Real-data trainings (teachers, experts, selection and full-data networks) are counted by `training_flops` at the
# arithmetic's three passes per image and priced at ASSUMED_FLOPS_PER_S / TRAINING_RATE_FACTOR: on the CPU, full-data
# ConvNet steps at batch 256 measured 167-176 GFLOP/s on 2 threads with the CLI's allocator setting (113-117 without
# it; benchmarks/bench_train_rate.py, bench_allocator.py, RESULTS.md), 0.38 TFLOP/s / 2.2. The plan prices those
# stages' FLOPs by `training_rate_factor`.
TRAINING_RATE_FACTOR = {"cuda": 1.0, "cpu": 2.2}
TRAINING_STAGES = ("teacher", "experts", "selection", "fulldata")
# A fixed cost per optimizer step on top of the arithmetic: DSA's sampling, kernel launches, Python. It is most of a
# step on small images or small sets (digits: 4.7 ms of a 5.2 ms evaluation step on this CPU). CPU: fitted on this
# machine's digits runs (RESULTS.md); CUDA: from the H100 reference timings (30 unrolled MTT steps in 0.40 s).
STEP_SECONDS = {"cuda": 4e-3, "cpu": 4.7e-3}
UNROLL_STEP_COST = 4.0  # an unrolled matching step costs about four optimizer steps of overhead (measured on digits)


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


def eval_flops(arch: str, train, trained: float, tested: float, device_type: str) -> float:
    """Forward-equivalent FLOPs of one evaluated network: `trained` images (over every pass) and `tested` images."""
    fwd = forward_flops(arch, train.num_classes, train.channels, int(train.image_size[0]), int(train.image_size[1]))
    return fwd * (trained * EVAL_TRAIN_FACTOR.get(device_type, EVAL_TRAIN_FACTOR["cpu"]) + tested)


def eval_steps(card, trained: float) -> float:
    """Optimizer steps of one evaluated network that trains on `trained` images over all its passes (kind.work)."""
    passes = card.train.epochs + 1
    return training_steps(passes, int(round(trained / passes)), card.train.batch_size)


def hours(flops: float, device_type: str, steps: float = 0.0) -> float:
    """Device-hours of `flops` of arithmetic and `steps` optimizer steps' fixed cost."""
    rate = ASSUMED_FLOPS_PER_S.get(device_type, ASSUMED_FLOPS_PER_S["cpu"])
    return (flops / rate + steps * STEP_SECONDS.get(device_type, STEP_SECONDS["cpu"])) / 3600.0


def training_rate_factor(device_type: str) -> float:
    """How many times its arithmetic (`training_flops`) a real-data training costs at ASSUMED_FLOPS_PER_S."""
    return TRAINING_RATE_FACTOR.get(device_type, TRAINING_RATE_FACTOR["cpu"])


def training_steps(epochs: int, images: int, batch_size: int) -> float:
    """Optimizer steps of `epochs` passes over `images` in batches of `batch_size`."""
    return float(epochs * -(-images // max(1, batch_size)))


def unrolled_steps(iterations: int, steps: int) -> float:
    """Trajectory matching's steps, in optimizer-step equivalents of fixed cost."""
    return UNROLL_STEP_COST * iterations * steps


# An unrolled step and the backward through it (a double backward), per synthetic image, in forward passes. CUDA: the
# arithmetic's estimate. CPU: fitted on MTT's MNIST distillations at the rate and step cost above (RESULTS.md: IPC 1,
# 50 steps, 1062 s for 300 iterations, 20 passes; IPC 10, 30 steps, about 22 s per iteration, 28 passes); 24 is
# within 13 % of both (6, the arithmetic's estimate, planned a quarter of the IPC 10 time).
UNROLL_FACTOR = {"cuda": 6.0, "cpu": 24.0}


def unrolled_flops(arch: str, num_classes: int, train, iterations: int, steps: int, batch: int, device_type: str) -> float:
    """Forward-equivalent FLOPs of trajectory matching: `iterations` × `steps` unrolled steps on `batch` synthetic
    images, on a `device_type` device."""
    h, w = train.image_size
    factor = UNROLL_FACTOR.get(device_type, UNROLL_FACTOR["cpu"])
    return factor * iterations * steps * batch * forward_flops(arch, num_classes, train.channels, int(h), int(w))
