"""Sweep scale-out: the same digits sweep in-process and on a local Ray instance, in one run.

The sweep: random, herding and MTT (the digits budget: 5 experts, 200 iterations) on the digits
card, two archs, several seeds; each executor starts from an empty cache and store. Prints each
one's wall time, the ratio (in-process / Ray), the tasks' own time, and the overhead per task:
(workers × Ray wall time − the tasks' own time) / tasks, which counts Ray's start, scheduling,
transfers and any worker left idle by the graph's critical path. Both runs must give the same
accuracies (checked). The in-process baseline uses torch's default threads (all cores).

    python benchmarks/bench_sweep.py                       # 2 workers, 3 seeds, the card's 1000 passes
    python benchmarks/bench_sweep.py --epochs 300 --seeds 2
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import torch
from tabulate import tabulate

from ddbench.evaluate import EvalOptions, run_requests
from ddbench.executors import LocalExecutor
from ddbench.protocol import load_protocol
from ddbench.ray_executor import RayExecutor
from ddbench.registry import create_method
from ddbench.results import ResultStore
from ddbench.sweep import Request


def _requests(epochs: int | None) -> list[Request]:
    card = load_protocol("digits-quick")
    if epochs:
        card = card.with_overrides(epochs=epochs)
    return [Request(card, method=create_method(m)) for m in ("random", "herding", "mtt")]


def _run(executor, root: Path, args: argparse.Namespace) -> tuple[float, object, dict]:
    opts = EvalOptions(device=torch.device("cpu"), store=ResultStore(root / "results"), cache_dir=root / "cache",
                       archs=args.archs.split(","), seeds=args.seeds, mode="loop", progress=False)
    start = time.perf_counter()
    rows, summary = run_requests(_requests(args.epochs), opts, executor)
    wall = time.perf_counter() - start
    return wall, summary, {(r["method"], r["arch"], r["seed"]): r["accuracy"] for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, help="shorter recipe than the card's 1000 passes")
    ap.add_argument("--archs", default="convnetd1,convnetd2")
    args = ap.parse_args()
    logging.getLogger("ddbench").setLevel(logging.WARNING)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with tempfile.TemporaryDirectory() as tmp:
        local_wall, local, local_acc = _run(LocalExecutor(), Path(tmp) / "local", args)
        ray_wall, on_ray, ray_acc = _run(RayExecutor(workers=args.workers), Path(tmp) / "ray", args)
    assert local_acc == ray_acc, "the executors disagree on accuracies"
    tasks = on_ray.done
    overhead = (args.workers * ray_wall - on_ray.task_seconds) / tasks
    print(f"digits sweep: random, herding, mtt × {args.archs} × {args.seeds} seeds, "
          f"{args.epochs or 1000} passes; {os.cpu_count()} CPU cores; torch {torch.__version__}")
    print(tabulate([["in-process", f"torch default ({torch.get_num_threads()})", local.done, f"{local_wall:.1f}",
                     f"{local.task_seconds:.1f}"],
                    [f"ray, {args.workers} workers", "1 per task", tasks, f"{ray_wall:.1f}", f"{on_ray.task_seconds:.1f}"]],
                   headers=["executor", "threads", "tasks", "wall s", "tasks' own s"], tablefmt="github"))
    print(f"same accuracies: yes ({len(ray_acc)} rows); speed-up in-process / ray: {local_wall / ray_wall:.2f}×; "
          f"overhead per Ray task: {overhead:.2f} s")


if __name__ == "__main__":
    main()
