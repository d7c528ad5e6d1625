"""Driver overhead at scale (issue 24): a synthetic job graph of no-op tasks (default 10,000: 100 artefact-like tasks,
each needed by 99 row tasks that emit one result row), run in-process and on a local Ray instance, against a plain
loop that does the same work with no graph (a call and one store append per task), measured in the same run.
Prints wall time, the driver's overhead per task (wall time minus the tasks' own time, over the tasks), and the ratio
to the plain loop.

    python benchmarks/bench_driver.py                 # 10,000 tasks; Ray with 2 workers
    python benchmarks/bench_driver.py --tasks 2000 --no-ray
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tabulate import tabulate

from ddbench.store.results import REQUIRED_FIELDS, ResultStore
from ddbench.sweep.build import Sweep
from ddbench.sweep.executors import LocalExecutor
from ddbench.sweep.graph import Graph, Task
from ddbench.sweep.options import EvalOptions


@dataclass
class NoOp:
    """A task that does nothing but emit its one row (or none)."""

    seed: int
    emits: bool

    def run(self, ws, emit) -> None:
        if self.emits:
            emit([_row(self.seed)])

    def outputs(self, cache_dir: Path) -> list[Path]:
        return []


def _row(seed: int) -> dict:
    row = {k: "x" for k in REQUIRED_FIELDS}
    row.update(run_id="bench", protocol="p", protocol_hash="h", arch="a", seed=seed, accuracy=50.0)
    return row


def graph(tasks: int, fan: int = 100) -> Graph:
    g = Graph()
    roots = max(1, tasks // fan)
    for r in range(roots):
        root = g.add(Task(f"art:{r}", "experts", f"artefact {r}", NoOp(-1, False)))
        for i in range(fan - 1):
            seed = r * fan + i
            g.add(Task(f"rows:{seed}", "evaluate", f"row {seed}", NoOp(seed, True), deps=(root.key,)))
    return g


def plain(tasks: int, store: ResultStore) -> float:
    start = time.perf_counter()
    for seed in range(tasks):
        NoOp(seed, True).run(None, store.append)
    return time.perf_counter() - start


def run(executor, tasks: int, root: Path) -> tuple[float, float]:
    opts = EvalOptions(device=torch.device("cpu"), store=ResultStore(root / "store"), progress=False, cache_dir=root / "cache")
    sweep = Sweep(graph(tasks), [], opts, {})
    start = time.perf_counter()
    summary = executor.run(sweep)
    wall = time.perf_counter() - start
    assert summary.rows == len([t for t in sweep.graph.tasks if t.startswith("rows:")]), summary.line()
    return wall, summary.task_seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    logging.disable(logging.INFO)
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = plain(args.tasks, ResultStore(root / "plain"))
        table.append(["plain loop (call + append)", args.tasks, f"{base:.2f}", f"{1e3 * base / args.tasks:.3f}", "1.00"])
        wall, own = run(LocalExecutor(), args.tasks, root / "local")
        table.append(["in-process executor", args.tasks, f"{wall:.2f}", f"{1e3 * (wall - own) / args.tasks:.3f}",
                      f"{wall / base:.2f}"])
        if not args.no_ray:
            from ddbench.sweep.ray_executor import RayExecutor

            executor = RayExecutor(workers=args.workers)
            wall, own = run(executor, args.tasks, root / "ray")
            table.append([f"Ray, local instance, {args.workers} workers (start included)", args.tasks, f"{wall:.2f}",
                          f"{1e3 * (wall - own) / args.tasks:.3f}", f"{wall / base:.2f}"])
    print(tabulate(table, headers=["driver", "tasks", "wall s", "overhead ms/task", "× plain"], tablefmt="github"))


if __name__ == "__main__":
    main()
