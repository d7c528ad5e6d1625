"""Memory layout of 1-channel batches: the same training step on plain NCHW strides and on the
channels-last strides that a permuted (N, 1, H, W) tensor carries, at fp32 and under bf16 autocast.

A 1-channel tensor with strides (HW, 1, W, 1) counts as contiguous in both layouts, so
`.contiguous()` keeps it, and the convolutions take their channels-last kernels. DSA's crop and the
dataset loader once produced such batches for MNIST (benchmarks/RESULTS.md, Precision); this prints
each layout's step time and its ratio to the plain NCHW step measured in the same run.

    python benchmarks/bench_layout.py                       # MNIST's shape: ConvNet-3, 100 × 1 × 28 × 28
    python benchmarks/bench_layout.py --size 32 --steps 10
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_loop import bare_step_seconds  # noqa: E402

from ddbench.engine.precision import precision_scope  # noqa: E402
from ddbench.engine.train import init_network  # noqa: E402


def step_ms(x: torch.Tensor, y: torch.Tensor, precision: str, steps: int) -> float:
    """Mean wall time (ms) of the bare ConvNet-3 step on (x, y) at `precision`."""
    model = init_network("convnet", 0, 10, x.shape[1], tuple(x.shape[2:]))
    with precision_scope(precision, x.device, evaluation=True):
        return 1e3 * bare_step_seconds(model, x, y, steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(0)
    plain = torch.randn(args.batch, 1, args.size, args.size, generator=gen)
    channels_last = plain.as_strided(plain.shape, (args.size * args.size, 1, args.size, 1))
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    rows = []
    for precision in ("fp32", "bf16"):
        base = step_ms(plain, y, precision, args.steps)
        slow = step_ms(channels_last, y, precision, args.steps)
        rows.append([precision, f"{base:.1f}", f"{slow:.1f}", f"{slow / base:.2f}×"])
    print(f"ConvNet-3, batch {args.batch} × 1 × {args.size} × {args.size}, {args.steps} steps, {torch.get_num_threads()} threads")
    headers = ["precision", f"plain NCHW {tuple(plain.stride())} ms", f"channels-last {tuple(channels_last.stride())} ms", "slower by"]
    print(tabulate(rows, headers=headers, tablefmt="github"))


if __name__ == "__main__":
    main()
