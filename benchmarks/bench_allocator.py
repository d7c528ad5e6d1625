"""CPU training steps with the allocator setting the CLI makes (ddbench/engine/allocator.py) against glibc's defaults,
measured in the same run: each side in its own process (the setting is per process), same network, batch and
thread count. Prints seconds per step, minor page faults per step and peak memory, and the ratio plain / tuned.

    python benchmarks/bench_allocator.py [--steps 8] [--threads 2] [--arch convnet]

Batch 256 is a real-data training step (selection and full-data networks, MTT's experts); batch 100 an IPC 10
evaluation network's whole set in one step.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

from tabulate import tabulate

CASES = [("mnist", (1, 28, 28), 256), ("cifar10", (3, 32, 32), 256), ("cifar10", (3, 32, 32), 100)]


def measure(arch: str, shape: tuple[int, int, int], batch: int, steps: int, threads: int) -> dict[str, float]:
    """This process: bench_train_rate's timed steps (seconds and page faults per step) and the peak memory."""
    import torch
    from bench_train_rate import timed_steps  # beside this script; imports torch

    from ddbench.engine.allocator import tune_cpu_allocator

    tuned = tune_cpu_allocator()
    torch.set_num_threads(threads)
    seconds, faults = timed_steps(arch, shape, batch, steps)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"tuned": tuned, "seconds": seconds, "faults": faults, "peak_mb": peak_mb}


def in_child(malloc: str, args: argparse.Namespace, shape: tuple[int, int, int], batch: int) -> dict[str, float]:
    env = {**os.environ, "DDBENCH_MALLOC": malloc}
    cmd = [sys.executable, __file__, "--child", json.dumps([list(shape), batch]), "--steps", str(args.steps),
           "--threads", str(args.threads), "--arch", args.arch]
    return json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arch", default="convnet")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        shape, batch = json.loads(args.child)
        print(json.dumps(measure(args.arch, tuple(shape), batch, args.steps, args.threads)))
        return
    table = []
    for name, shape, batch in CASES:
        plain, tuned = in_child("system", args, shape, batch), in_child("", args, shape, batch)
        if not tuned["tuned"]:
            sys.exit("the allocator setting does not apply here (glibc on Linux only): nothing to compare")
        table.append([f"{name}, batch {batch}", f"{plain['seconds']:.3f}", f"{tuned['seconds']:.3f}",
                      f"{plain['seconds'] / tuned['seconds']:.2f}x", f"{plain['faults']:,.0f}", f"{tuned['faults']:,.0f}",
                      f"{plain['peak_mb']:,.0f}", f"{tuned['peak_mb']:,.0f}"])
    print(f"{args.arch}, {args.threads} thread(s), SGD steps after two warm-up steps; plain = glibc's defaults "
          "(DDBENCH_MALLOC=system), tuned = the CLI's setting")
    print(tabulate(table, headers=["step", "plain s", "tuned s", "plain / tuned", "plain faults", "tuned faults",
                                   "plain peak MB", "tuned peak MB"]))


if __name__ == "__main__":
    main()
