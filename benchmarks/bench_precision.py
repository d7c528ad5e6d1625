"""Precision: the same sets evaluated in fp32 and under bf16 autocast, in one run.

For each card, the random baseline's sets (one per seed, the same in both runs) are evaluated with
the card's recipe at fp32 and at bf16 (on a CPU seed by seed, in alternating order); prints each one's accuracy
(mean ± std over seeds), the wall times and their ratio (fp32 / bf16), and whether the means agree
within the seed spread.

    python benchmarks/bench_precision.py --data-root ../shared/data --cards mnist-ipc10 cifar10-ipc1 cifar10-ipc10 --seeds 5
    python benchmarks/bench_precision.py --cards digits-quick --seeds 2 --epochs 20      # a minute on a CPU
"""
from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
from tabulate import tabulate

from ddbench.core.provenance import device_name, pick_device
from ddbench.distill.registry import create_method
from ddbench.kinds import load_protocol
from ddbench.store.results import ResultStore
from ddbench.sweep.build import Request
from ddbench.sweep.evaluate import EvalOptions, run_requests


def _evaluate(card_id: str, precision: str, args: argparse.Namespace, device: torch.device, root: Path,
              seeds: tuple[int, ...]) -> tuple[list[float], float]:
    """`seeds` of `card_id` at `precision`: (accuracies in seed order, wall seconds)."""
    card = load_protocol(card_id).with_overrides(epochs=args.epochs, precision=precision)
    opts = EvalOptions(device=device, store=ResultStore(root / precision / "results"), data_root=args.data_root,
                       cache_dir=root / "cache", only_seeds=seeds, mode=args.mode, progress=False)
    start = time.perf_counter()
    rows, _ = run_requests([Request(card, method=create_method("random"))], opts)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return [r["accuracy"] for r in sorted(rows, key=lambda r: r["seed"])], time.perf_counter() - start


def _compare(card_id: str, args: argparse.Namespace, device: torch.device, root: Path) -> dict[str, tuple[list[float], float]]:
    """Both precisions on the same seeds. On a CPU seed by seed, their order alternating, so that a
    drift in the machine's speed during a long run (shared hosts: ±20% seen here) falls on both alike;
    on a GPU all seeds in one request, as the engine runs them there (stacked)."""
    _evaluate(card_id, "fp32", argparse.Namespace(**{**vars(args), "epochs": 1}), device, root / "warm", (0,))
    seeds = tuple(range(args.seeds))
    groups = [seeds] if device.type == "cuda" else [(s,) for s in seeds]
    accuracies: dict[str, list[float]] = {"fp32": [], "bf16": []}
    seconds = {"fp32": 0.0, "bf16": 0.0}
    for i, group in enumerate(groups):
        for precision in ("fp32", "bf16") if i % 2 == 0 else ("bf16", "fp32"):
            group_accuracies, group_seconds = _evaluate(card_id, precision, args, device, root, group)
            accuracies[precision] += group_accuracies
            seconds[precision] += group_seconds
    return {precision: (accuracies[precision], seconds[precision]) for precision in accuracies}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cards", nargs="+", default=["mnist-ipc10", "cifar10-ipc1", "cifar10-ipc10"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, help="shorter recipe than the cards' (for a quick look)")
    ap.add_argument("--data-root")
    ap.add_argument("--device")
    ap.add_argument("--mode", default="auto", choices=("auto", "loop", "vmap"))
    args = ap.parse_args()
    logging.getLogger("ddbench").setLevel(logging.WARNING)
    device = pick_device(args.device)
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for card_id in args.cards:
            both = _compare(card_id, args, device, Path(tmp))
            (fp32, t32), (bf16, t16) = both["fp32"], both["bf16"]
            m32, s32 = statistics.mean(fp32), statistics.pstdev(fp32)
            m16, s16 = statistics.mean(bf16), statistics.pstdev(bf16)
            agree = abs(m32 - m16) <= max(s32, s16)
            table.append([card_id, f"{m32:.2f} ± {s32:.2f}", f"{m16:.2f} ± {s16:.2f}", f"{m16 - m32:+.2f}",
                          "yes" if agree else "NO", f"{t32:.1f}", f"{t16:.1f}", f"{t32 / t16:.2f}×"])
    print(f"{device_name(device)}; torch {torch.__version__}; {args.seeds} seeds; "
          f"{'recipe epochs ' + str(args.epochs) if args.epochs else 'the cards’ recipes'}; random-real sets, the same in both")
    print(tabulate(table, headers=["card", "fp32 %", "bf16 %", "Δ", "within spread", "fp32 s", "bf16 s", "fp32/bf16"],
                   tablefmt="github"))


if __name__ == "__main__":
    main()
