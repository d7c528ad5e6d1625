"""Executors run a sweep's job graph: in this process (the default) or on Ray (ddbench.sweep.ray_executor).

Either way the driver is the only writer of the result store: rows are appended as they arrive,
and a row already stored is never written twice, so an interrupted sweep resumes by running the
same command again. A task that fails stops every task depending on it (one line each)
while the rest go on; the summary counts done / cached / failed / not run.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch

from ddbench.core import clock
from ddbench.core.errors import DDBenchError
from ddbench.sweep.build import Sweep
from ddbench.sweep.graph import ROW_STAGES, Graph, Task, Workspace
from ddbench.sweep.registry import EXECUTORS

log = logging.getLogger(__name__)


class SweepFailed(DDBenchError):
    """Some tasks of a sweep failed; the message is the failure (one) or a count and the first."""


@dataclass
class Summary:
    done: int = 0
    cached: int = 0
    failed: list[str] = field(default_factory=list)  # one line per task that failed on its own
    blocked: list[str] = field(default_factory=list)  # one line per task not run because a dependency failed
    first_error: str = ""  # the first failure's own message
    rows: int = 0
    seconds: float = 0.0  # the sweep's wall time
    task_seconds: float = 0.0  # the tasks' own time, summed

    def line(self) -> str:
        return (f"sweep: {self.done} task(s) done, {self.cached} cached, {len(self.failed)} failed, "
                f"{len(self.blocked)} not run (a dependency failed); "
                f"{self.rows} row(s) written in {self.seconds:.1f} s")

    def raise_if_failed(self) -> None:
        if not self.failed:
            return
        if len(self.failed) == 1:
            raise SweepFailed(self.first_error or self.failed[0])
        raise SweepFailed(f"{len(self.failed)} tasks failed; first: {self.failed[0]}")


def record_failure(summary: Summary, task: Task, exc: BaseException) -> str:
    """Add one line for `task`'s failure to the summary; returns it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, DDBenchError):
        text = f"{type(exc).__name__}: {text}"
    summary.first_error = summary.first_error or text
    summary.failed.append(f"{task.stage} {task.label}: {text}")
    return summary.failed[-1]


def block_dependants(graph: Graph, task: Task, summary: Summary, blocked: set[str]) -> None:
    for dep in graph.dependants(task.key):
        if dep.key not in blocked and not dep.done:
            blocked.add(dep.key)
            summary.blocked.append(f"{dep.stage} {dep.label}: not run, it needs {task.stage} {task.label}, which failed")
            log.info(f"  {summary.blocked[-1]}")


class LocalExecutor:
    """Every task in this process, in dependency order, on the options' device."""

    name = "in-process"
    seeds_per_task: int | None = None  # all seeds of an arch in one task (trained together where that is faster)

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    @classmethod
    def from_options(cls, address: str | None = None, workers: int | None = None,
                     threads_per_task: int | None = None, host: str | None = None) -> "LocalExecutor":
        if address:
            raise DDBenchError("--address needs --executor ray")
        if host:
            raise DDBenchError("--ray-host needs --executor ray")
        if workers:
            raise DDBenchError("--workers needs --executor ray")
        return cls(threads_per_task)

    def run(self, sweep: Sweep) -> Summary:
        if self.threads:
            previous = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                return self._run(sweep)
            finally:
                torch.set_num_threads(previous)
        return self._run(sweep)

    def _run(self, sweep: Sweep) -> Summary:
        opts, graph = sweep.opts, sweep.graph
        ws = Workspace(opts.device, opts.cache_dir, sweep.datasets, opts.mode, opts.progress)
        summary = Summary()
        start = clock.now()
        blocked: set[str] = set()
        todo = [t for t in graph.order() if not t.done]
        summary.cached = len(graph.tasks) - len(todo)

        def emit(rows: list[dict]) -> None:
            summary.rows += opts.store.append(rows)

        for i, task in enumerate(todo):
            if task.key in blocked:
                continue
            if task.stage not in ROW_STAGES:
                log.info(f"[{i + 1}/{len(todo)}] {task.stage}: {task.label}")
            began = clock.now()
            try:
                task.action.run(ws, emit)
            except Exception as exc:
                if os.environ.get("DDBENCH_DEBUG"):
                    raise
                log.info(f"  failed: {record_failure(summary, task, exc)}")
                block_dependants(graph, task, summary, blocked)
            else:
                summary.done += 1
                summary.task_seconds += clock.now() - began
        summary.seconds = clock.now() - start
        return summary


def make_executor(name: str, address: str | None = None, workers: int | None = None, threads_per_task: int | None = None,
                  host: str | None = None):
    """The executor called `name`: "local" (in-process), "ray" (needs the `ray` extra) or a plug-in's."""
    options = {"address": address, "workers": workers, "threads_per_task": threads_per_task}
    if host:
        options["host"] = host
    return EXECUTORS.get(name).from_options(**options)
