"""How fast a full-data training step runs here (the coresets' selection networks, MTT's experts, robustness's
full-data networks), against what `--plan` assumes for it: `training_flops` × `training_rate_factor` at
ASSUMED_FLOPS_PER_S plus STEP_SECONDS per step. Prints the measured seconds per step, the plan's, and their ratio, per dataset shape.
The allocator is set as the CLI sets it (DDBENCH_MALLOC=system measures glibc's defaults).

    python benchmarks/bench_train_rate.py [--steps 15] [--threads 2] [--arch convnet]
"""
from __future__ import annotations

import argparse
import resource
import time

import torch
import torch.nn.functional as F

from ddbench.engine.allocator import tune_cpu_allocator
from ddbench.engine.cost import TRAIN_FACTOR, forward_flops, hours, training_rate_factor
from ddbench.engine.precision import flags
from ddbench.engine.train import init_network

SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


def timed_steps(arch: str, shape: tuple[int, int, int], batch: int, steps: int) -> tuple[float, float]:
    """Seconds and minor page faults per SGD step of a fresh network, after two warm-up steps."""
    model = init_network(arch, 0, 10, shape[0], shape[1:]).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    for i in range(steps + 2):
        if i == 2:
            start, faults = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    return seconds / steps, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arch", default="convnet")
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    allocator = "the CLI's allocator setting" if tune_cpu_allocator() else "the system allocator"
    print(f"{args.arch}, batch {args.batch}, {args.threads} thread(s), {allocator}; {flags()}")
    for name, shape in SHAPES.items():
        measured, _ = timed_steps(args.arch, shape, args.batch, args.steps)
        flops = TRAIN_FACTOR * args.batch * forward_flops(args.arch, 10, *shape)
        planned = hours(flops * training_rate_factor("cpu"), "cpu", steps=1) * 3600  # as `--plan` prices a selection step
        print(f"{name}: measured {measured:.3f} s/step ({flops / measured / 1e9:.0f} GFLOP/s), plan {planned:.3f} s/step; "
              f"measured / plan = {measured / planned:.2f}")


if __name__ == "__main__":
    main()
