"""Sweep scale-out: the same digits sweep in-process and on a local Ray instance, in one run.

The sweep: random, herding and MTT on the digits card, two archs, several seeds, the card's
1000-pass recipe; MTT with the test sweep's small budget (2 experts × 8 epochs, 30 iterations;
`--mtt-budget digits` for the card's own: 5 experts × 20 epochs, 200 iterations, whose single
distillation then dominates the critical path). Each executor starts from an empty cache and store. Runs in-process at
torch's default threads (all cores) and at 1 thread, then on Ray (1 thread per task). Prints each
one's wall time, the ratios, the tasks' own time, and the overhead per Ray task:
(workers × Ray wall time − the tasks' own time) / tasks, which counts Ray's start, scheduling,
transfers and any worker left idle by the graph's critical path. Ray and in-process at the same
threads per task must give equal accuracies (checked); at other thread counts the largest per-row
gap is printed.

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

from ddbench.distill.registry import create_method
from ddbench.kinds import load_protocol
from ddbench.store.results import ResultStore
from ddbench.sweep.build import Request
from ddbench.sweep.evaluate import EvalOptions, run_requests
from ddbench.sweep.executors import LocalExecutor
from ddbench.sweep.ray_executor import RayExecutor

SMALL_MTT = {"iterations": 30, "num_experts": 2, "expert_train_epochs": 8}  # tests/test_ray.py's sweep


def _requests(epochs: int | None, mtt_budget: str) -> list[Request]:
    card = load_protocol("digits-quick")
    if epochs:
        card = card.with_overrides(epochs=epochs)
    mtt = create_method("mtt", **(SMALL_MTT if mtt_budget == "small" else {}))
    return [Request(card, method=create_method("random")), Request(card, method=create_method("herding")),
            Request(card, method=mtt)]


def _run(executor, root: Path, args: argparse.Namespace) -> tuple[float, object, dict]:
    opts = EvalOptions(device=torch.device("cpu"), store=ResultStore(root / "results"), cache_dir=root / "cache",
                       archs=args.archs.split(","), seeds=args.seeds, mode="loop", progress=False)
    start = time.perf_counter()
    rows, summary = run_requests(_requests(args.epochs, args.mtt_budget), opts, executor)
    wall = time.perf_counter() - start
    return wall, summary, {(r["method"], r["arch"], r["seed"]): r["accuracy"] for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, help="shorter recipe than the card's 1000 passes")
    ap.add_argument("--archs", default="convnetd1,convnetd2")
    ap.add_argument("--mtt-budget", choices=("small", "digits"), default="small")
    args = ap.parse_args()
    logging.getLogger("ddbench").setLevel(logging.WARNING)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    default_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        local_wall, local, local_acc = _run(LocalExecutor(), Path(tmp) / "local", args)
        one_wall, one, one_acc = _run(LocalExecutor(threads=1), Path(tmp) / "local1", args)
        ray_wall, on_ray, ray_acc = _run(RayExecutor(workers=args.workers), Path(tmp) / "ray", args)
    assert local_acc.keys() == ray_acc.keys() == one_acc.keys(), "the executors wrote different rows"
    assert one_acc == ray_acc, "equal threads per task must give equal accuracies"
    gap = max(abs(local_acc[k] - ray_acc[k]) for k in local_acc)
    tasks = on_ray.done
    overhead = (args.workers * ray_wall - on_ray.task_seconds) / tasks
    print(f"digits sweep: random, herding, mtt ({args.mtt_budget} budget) × {args.archs} × {args.seeds} seeds, "
          f"{args.epochs or 1000} passes; {os.cpu_count()} CPU cores; torch {torch.__version__}")
    print(tabulate([["in-process", f"torch default ({default_threads})", local.done, f"{local_wall:.1f}", f"{local.task_seconds:.1f}",
                     f"{local_wall / ray_wall:.2f}×"],
                    ["in-process", "1", one.done, f"{one_wall:.1f}", f"{one.task_seconds:.1f}", f"{one_wall / ray_wall:.2f}×"],
                    [f"ray, {args.workers} workers", "1 per task", tasks, f"{ray_wall:.1f}", f"{on_ray.task_seconds:.1f}", "1"]],
                   headers=["executor", "threads", "tasks", "wall s", "tasks' own s", "wall / ray wall"], tablefmt="github"))
    print(f"{len(ray_acc)} rows each; ray = in-process at 1 thread to the last digit; in-process at {default_threads} threads "
          f"differs by up to {gap:.2f} points per row")
    print(f"speed-up of ray: {one_wall / ray_wall:.2f}× over in-process at the same threads per task, "
          f"{local_wall / ray_wall:.2f}× over in-process at torch's default; overhead per Ray task: {overhead:.2f} s")


if __name__ == "__main__":
    main()
