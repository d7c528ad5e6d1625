"""The job graph: every unit of a sweep's work as a task with explicit dependencies.

Stages, in dependency order: `teacher` → `experts` / `selection` → `distill` → `evaluate` / `probe`; `fulldata`
(robustness scores' networks trained on the whole training set) needs nothing.
A task is content-addressed by its key (the cache path or row key it produces), so two cards or
methods needing the same expert share one task. A task's action runs wherever an executor puts it:
it reads its inputs from the workspace's cache directory and datasets, writes its files there and
hands result rows to `emit`. It never writes the result store: the driver does (ddbench.sweep.executors).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from ddbench.cards.card import ProtocolCard
from ddbench.core.errors import DDBenchError
from ddbench.data import ImageDataset
from ddbench.distill.method import Artefact, DistillContext, Method
from ddbench.engine.precision import precision_scope
from ddbench.kinds import EvalJob, Runtime, base_row, get_kind
from ddbench.store.distilled import DistilledSet
from ddbench.sweep.options import EvalOptions, card_space, distill_cached, snapshot_path

log = logging.getLogger(__name__)

Row = dict[str, Any]
Emit = Callable[[list[Row]], None]
STAGES = ("teacher", "experts", "selection", "distill", "fulldata", "evaluate", "probe")
ROW_STAGES = ("evaluate", "probe")  # the stages whose tasks produce result rows


@dataclass
class Workspace:
    """Where a task runs: its device, cache directory, the datasets it may read, batching and progress."""

    device: torch.device
    cache_dir: Path
    datasets: dict[str, ImageDataset]
    mode: str = "auto"
    progress: bool = True


class Action(Protocol):
    def run(self, ws: Workspace, emit: Emit) -> None: ...

    def outputs(self, cache_dir: Path) -> list[Path]: ...


@dataclass
class Task:
    key: str
    stage: str
    label: str
    action: Action
    deps: tuple[str, ...] = ()
    gpus: float = 1.0  # the share of a GPU it asks for when the sweep runs on GPUs
    flops: float | None = None  # estimated work, for --plan
    seconds: float | None = None  # measured on earlier runs, for --plan
    steps: float = 0.0  # optimizer steps (each with a fixed cost beside its FLOPs), for --plan
    done: bool = False  # its outputs are already cached (or its rows stored)


@dataclass
class Graph:
    tasks: dict[str, Task] = field(default_factory=dict)

    def add(self, task: Task) -> Task:
        """Add `task` unless a task with its key is there already (then that one is returned)."""
        if task.key in self.tasks:
            return self.tasks[task.key]
        missing = [d for d in task.deps if d not in self.tasks]
        if missing:
            raise ValueError(f"task {task.key} depends on unknown task(s) {missing}")
        self.tasks[task.key] = task
        return task

    def order(self) -> list[Task]:
        """Every task after its dependencies (insertion order is one)."""
        return list(self.tasks.values())

    def dependants(self, key: str) -> list[Task]:
        """Tasks that need `key`, directly or not."""
        out: list[Task] = []
        blocked = {key}
        for task in self.order():
            if any(d in blocked for d in task.deps):
                blocked.add(task.key)
                out.append(task)
        return out


@dataclass
class BuildArtefact:
    """Make one of a method's artefacts (an expert trajectory, a teacher, a selection network)."""

    artefact: Artefact
    card: ProtocolCard
    method: Method
    seed: int

    def run(self, ws: Workspace, emit: Emit) -> None:
        train = ws.datasets[self.card.dataset]
        ctx = DistillContext(card=self.card, device=ws.device, seed=self.seed, config=self.method.config_for(self.card),
                             space=card_space(self.card, train), method_name=self.method.name, cache_dir=ws.cache_dir,
                             progress=ws.progress)
        with precision_scope(self.card.precision, ws.device):
            self.artefact.build(train, ctx)
        missing = [p for p in self.outputs(ws.cache_dir) if not p.is_file()]
        if missing:
            raise DDBenchError(f"{self.artefact.label}: its build left no {missing[0].name}")

    def outputs(self, cache_dir: Path) -> list[Path]:
        return self.artefact.files(cache_dir)


@dataclass
class Distill:
    """Distil one set (cached under the relative path `set_path`, with its snapshots)."""

    method: Method
    card: ProtocolCard
    seed: int
    set_path: str
    snapshots: tuple[int, ...] = ()

    def run(self, ws: Workspace, emit: Emit) -> None:
        opts = EvalOptions(device=ws.device, store=None, cache_dir=ws.cache_dir, progress=ws.progress, snapshots=self.snapshots)
        distill_cached(self.method, self.card, ws.datasets[self.card.dataset], self.seed, opts)

    def outputs(self, cache_dir: Path) -> list[Path]:
        final = cache_dir / self.set_path
        return [final, *(snapshot_path(final, step) for step in self.snapshots)]


@dataclass
class Evaluate:
    """Evaluate seeds of one arch on set(s): cached set files (`set_paths`, relative) or sets given in memory."""

    card: ProtocolCard
    run_id: str
    arch: str
    seeds: list[int]
    set_paths: list[str] = dataclasses.field(default_factory=list)
    sets: list[DistilledSet] = dataclasses.field(default_factory=list)
    external: bool = False

    def run(self, ws: Workspace, emit: Emit) -> None:
        sets = self.sets or [DistilledSet.load(ws.cache_dir / p) for p in self.set_paths]
        train = ws.datasets[self.card.dataset]
        base = base_row(self.card, self.run_id, ws.device, train)
        base["external"] = self.external
        rt = Runtime(ws.device, ws.datasets, ws.mode, ws.progress, ws.cache_dir)
        with precision_scope(self.card.precision, ws.device, evaluation=True):
            get_kind(self.card.kind).run(EvalJob(self.arch, list(self.seeds), sets), self.card, train, rt, base, emit)

    def outputs(self, cache_dir: Path) -> list[Path]:
        return []
