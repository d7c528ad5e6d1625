"""A sweep: (method or set) × card requests turned into one job graph.

`build_sweep` loads what the requests need, decides what is already cached (sets, artefacts, rows
in the store) and adds one task per unit of work; `ddbench.sweep.executors` runs the graph in-process
or on Ray; `plan` describes it without running anything.
"""
from __future__ import annotations

import dataclasses
import logging
import statistics
from dataclasses import dataclass, field
from typing import Any

from ddbench.cards.card import MAX_SEEDS, ProtocolCard
from ddbench.core.errors import DDBenchError
from ddbench.data import ImageDataset, dataset_status, load_dataset
from ddbench.distill.method import DistillContext, Method
from ddbench.engine.cost import (
    ASSUMED_FLOPS_PER_S,
    EVAL_TRAIN_FACTOR,
    STEP_SECONDS,
    TRAIN_FACTOR,
    TRAINING_STAGES,
    eval_flops,
    eval_steps,
    hours,
    training_rate_factor,
)
from ddbench.engine.resume import ResumeFile
from ddbench.kinds import check_fits, get_kind
from ddbench.store.distilled import DistilledSet
from ddbench.store.results import row_key
from ddbench.sweep.graph import ROW_STAGES, BuildArtefact, Distill, Evaluate, Graph, Task
from ddbench.sweep.options import EvalOptions, card_space, check_class_sizes, config_hash, resume_path, set_cache_path

log = logging.getLogger(__name__)

EVAL_GPU_SHARE = 0.25  # small evaluation networks: four share one GPU


@dataclass
class Request:
    """Evaluate `method` (distilled under the card, cached) or the set `dset` under `card`."""

    card: ProtocolCard
    method: Method | None = None
    dset: DistilledSet | None = None
    external: bool = False  # dset comes from a file: its method name is a claim

    @property
    def run_id(self) -> str:

        if self.method is not None:
            return f"cfg-{config_hash(self.method.name, self.method.identity_config(self.card))}"
        assert self.dset is not None
        return f"set-{self.dset.set_id}"

    def label(self) -> str:
        return self.method.name if self.method is not None else f"set {self.dset.set_id if self.dset else '?'}"


@dataclass
class Sweep:
    graph: Graph
    requests: list[Request]
    opts: EvalOptions
    datasets: dict[str, ImageDataset] = field(default_factory=dict)


_SKIP_REPORTED: set[tuple[str, str]] = set()


def row_tasks(card: ProtocolCard, opts: Any, quiet: bool = True) -> list[str]:
    """The row tasks of a card ("" for one row per (arch, seed)); absent downstream sets skipped with one line."""
    def present(name: str) -> bool:
        if dataset_status(name, opts.data_root)["present"]:
            return True
        if not quiet and (str(opts.data_root), name) not in _SKIP_REPORTED:
            _SKIP_REPORTED.add((str(opts.data_root), name))
            log.info(f"  skipping downstream '{name}': not found under the data root (`ddbench data prepare {name}`)")
        return False

    return get_kind(card.kind).row_tasks(card, present)


def eval_seeds(card: ProtocolCard, opts: Any) -> list[int]:
    """The evaluation seeds of a request: `only_seeds` (verify), else 0..N-1 (--seeds, else the card's)."""
    if opts.only_seeds is not None:
        return list(opts.only_seeds)
    return list(range(opts.seeds if opts.seeds is not None else card.seeds))


def _chunks(seeds: list[int], size: int | None) -> list[list[int]]:
    size = size or len(seeds) or 1
    return [seeds[i : i + size] for i in range(0, len(seeds), size)]


class _Builder:
    def __init__(self, opts: Any, seeds_per_task: int | None) -> None:
        self.opts, self.seeds_per_task = opts, seeds_per_task
        self.graph = Graph()
        self.datasets: dict[str, ImageDataset] = {}
        self.rows = opts.store.rows() if opts.store is not None else []
        self.done = {row_key(r) for r in self.rows}
        kind = opts.device.type  # rows measured on this kind of device (a row's device is "cpu (…)" or the GPU's name)
        self.same_kind = [r for r in self.rows if ("cpu" if str(r.get("device", "")).startswith("cpu") else "cuda") == kind]

    def dataset(self, name: str) -> ImageDataset:
        if name not in self.datasets:
            self.datasets[name] = load_dataset(name, self.opts.data_root)
        return self.datasets[name]

    def add(self, req: Request) -> None:
        card, opts = req.card, self.opts
        kind = get_kind(card.kind)
        run_id = req.run_id
        tasks = row_tasks(card, opts, quiet=False)
        archs = list(opts.archs or card.archs)
        seeds = eval_seeds(card, opts)
        plan: list[tuple[str, list[int], list[int]]] = []  # (arch, chunk, its seeds still to run)
        for arch in archs:
            todo = [s for s in seeds if any((run_id, card.id, card.hash, arch, s, t) not in self.done for t in tasks)]
            if len(todo) < len(seeds):
                log.info(f"  {card.id} {arch}: {len(seeds) - len(todo)} of {len(seeds)} seed(s) already in "
                         f"{opts.store.path}; skipping them")
            plan += [(arch, chunk, [s for s in chunk if s in todo]) for chunk in _chunks(seeds, self.seeds_per_task)]
        pending = [p for p in plan if p[2]]
        for arch, chunk, todo in plan:
            if not todo:  # every row of this chunk is stored: a cached task, for --plan
                self.graph.add(Task(f"rows:{run_id}:{card.id}:{card.hash}:{arch}:{chunk[0]}-{chunk[-1]}", kind.stage,
                                    f"{card.id} {req.label()} {arch} seeds {chunk[0]}-{chunk[-1]}",
                                    Evaluate(card, run_id, arch, chunk), done=True))
        if not pending:
            return
        for name in kind.datasets(card):
            if name == card.dataset or dataset_status(name, opts.data_root)["present"]:
                self.dataset(name)
        train = self.datasets[card.dataset]
        self._check_same_data(card, run_id, train)
        set_keys: dict[int, str] = {}  # set seed -> its distillation task (method requests)
        set_paths: dict[int, str] = {}  # set seed -> its cache path
        per_seed = req.method is not None and req.method.sets_per_seed(card)
        if req.dset is not None:
            check_fits(req.dset, card, train)
        else:
            set_keys, set_paths = self._distill_tasks(req.method, card, train, sorted({s for _, _, t in pending for s in t}))
        history = self._history(req, card)
        for arch, chunk, todo in pending:
            set_seeds = (todo if per_seed else [0]) if req.method is not None else []
            action = Evaluate(card, run_id, arch, todo, set_paths=[set_paths[s] for s in set_seeds],
                              sets=[req.dset] if req.dset is not None else [], external=req.external)
            deps = tuple(dict.fromkeys(set_keys[s] for s in set_seeds))
            seconds = history.get(arch)
            self.graph.add(Task(f"rows:{run_id}:{card.id}:{card.hash}:{arch}:{chunk[0]}-{chunk[-1]}", kind.stage,
                                f"{card.id} {req.label()} {arch} seed{'s' if len(todo) > 1 else ''} {','.join(map(str, todo))}",
                                action, deps=deps, gpus=EVAL_GPU_SHARE, flops=self._eval_flops(card, arch, train, len(todo)),
                                steps=len(todo) * eval_steps(card, get_kind(card.kind).work(card, train)[0]),
                                seconds=seconds * len(todo) if seconds else None))

    def _distill_tasks(self, method: Method, card: ProtocolCard, train: ImageDataset, seeds: list[int],
                       set_seeds: list[int] | None = None) -> tuple[dict[int, str], dict[int, str]]:
        """One distillation task per set needed (and the artefacts each needs); {set seed: its task key}, {set seed: set path}
        (set seed: the evaluation seed for methods with one set per seed, else 0)."""

        check_class_sizes(card, train)
        opts = self.opts
        if set_seeds is None:
            set_seeds = seeds if method.sets_per_seed(card) else [0]
        keys: dict[int, str] = {}
        paths: dict[int, str] = {}
        times = [r["distill_time_s"] for r in self.same_kind if r.get("method") == method.name and r.get("protocol") == card.id
                 and isinstance(r.get("distill_time_s"), (int, float))]
        for seed in set_seeds:
            path = set_cache_path(method, card, train, seed, opts)
            rel = str(path.relative_to(opts.cache_dir))
            action = Distill(method, card, seed, rel, tuple(opts.snapshots))
            done = all(p.is_file() for p in action.outputs(opts.cache_dir))
            deps: tuple[str, ...] = ()
            ctx = DistillContext(card=card, device=opts.device, seed=seed, config=method.config_for(card),
                                 space=card_space(card, train), method_name=method.name, cache_dir=opts.cache_dir,
                                 progress=opts.progress, resume=ResumeFile(resume_path(path)))
            saved = 0 if done else ctx.resume.epochs_saved()  # an interrupted run: the method prices what is left
            if not done:
                arts = method.artefacts(train, ctx)
                for art in arts:
                    build = BuildArtefact(art, card, method, seed)
                    self.graph.add(Task(art.key, art.stage, art.label, build, deps=art.deps, flops=art.flops,
                                        seconds=art.seconds, steps=art.steps, done=all(p.is_file() for p in art.files(opts.cache_dir))))
                deps = tuple(a.key for a in arts)
            key = f"set:{rel}"
            label = f"{method.name} {card.id} seed {seed}" + (f" (resumes after {saved} {method.loop_unit})" if saved else "")
            steps = 0.0 if done else method.distill_steps(train, ctx)
            seconds = statistics.median(times) if times else None  # recorded whole runs (a loaded host's outlier aside)
            whole = method.distill_steps(train, dataclasses.replace(ctx, resume=None)) if seconds and saved else 0.0
            self.graph.add(Task(key, "distill", label, action, deps=deps,
                                flops=None if done else method.distill_flops(train, ctx), steps=steps,
                                seconds=seconds * steps / whole if whole else seconds, done=done))
            keys[seed] = key
            paths[seed] = rel
        return keys, paths

    def _eval_flops(self, card: ProtocolCard, arch: str, train: ImageDataset, count: int) -> float | None:
        try:
            trained, tested = get_kind(card.kind).work(card, train)
            return count * eval_flops(arch, train, trained, tested, self.opts.device.type)
        except Exception:  # an arch the counter cannot trace: no estimate
            return None

    def _history(self, req: Request, card: ProtocolCard) -> dict[str, float]:
        """Median recorded wall time per (arch) seed of earlier rows of this card and method; where the method has none,
        of any method on this card (a supervised evaluation costs the same whatever made the set, at equal IPC). A row's
        time is its training's plus what its kind measured after it (an adversarial row's attacks). The median, not the
        mean: one row made on a loaded host would otherwise price every later plan of the card."""
        name = req.method.name if req.method else (req.dset.method if req.dset else "")
        kind = get_kind(card.kind)
        same: dict[str, list[float]] = {}
        other: dict[str, list[float]] = {}
        for r in self.same_kind:
            if r.get("protocol_hash") == card.hash and isinstance(r.get("wall_time_s"), (int, float)) and not r.get("task"):
                seconds = float(r["wall_time_s"]) + kind.measure_seconds(r)
                (same if r.get("method") == name else other).setdefault(r["arch"], []).append(seconds)
        if not kind.per_class_ipc:
            other = {}
        return {arch: statistics.median(same.get(arch) or other[arch]) for arch in {*same, *other}}

    def _check_same_data(self, card: ProtocolCard, run_id: str, train: ImageDataset) -> None:
        """Rows of this run stored earlier must come from the very same data; resuming on other data would mix."""
        for row in self.rows:
            if row["run_id"] == run_id and row["protocol"] == card.id and row.get("data_fingerprint") not in (None, train.fingerprint):
                raise DDBenchError(f"{self.opts.store.path} already holds rows of this run on card '{card.id}' made on other "
                                   f"{card.dataset} data (fingerprint {row['data_fingerprint']}, now {train.fingerprint}, "
                                   f"{train.source}); use another --results store or remove those rows")


def build_sweep(requests: list[Request], opts: Any, seeds_per_task: int | None = None) -> Sweep:
    """The job graph of `requests`: only what is not yet cached or stored runs; unneeded artefacts are left out.

    `seeds_per_task`: evaluation seeds of one arch per task (None: all of them, trained together)."""
    if opts.seeds is not None and not 1 <= opts.seeds <= MAX_SEEDS:
        raise DDBenchError(f"seeds must be 1..{MAX_SEEDS}, got {opts.seeds}")
    if opts.store is not None:
        opts.store.check_writable()
    for req in requests:  # every method against every card before any dataset is read or artefact planned
        if req.method is not None and get_kind(req.card.kind).sets not in req.method.kinds:
            raise DDBenchError(f"method '{req.method.name}' does not support {req.card.kind} cards like '{req.card.id}'")
    builder = _Builder(opts, seeds_per_task)
    for req in requests:
        builder.add(req)
    _prune(builder.graph)
    return Sweep(builder.graph, requests, opts, builder.datasets)


def build_distill_sweep(method: Method, card: ProtocolCard, seed: int, opts: Any) -> Sweep:
    """The job graph of one distillation: the method's artefacts, then the set (cached ones marked done)."""
    builder = _Builder(opts, None)
    train = builder.dataset(card.dataset)
    builder._distill_tasks(method, card, train, [seed], set_seeds=[seed])
    return Sweep(builder.graph, [], opts, builder.datasets)


def _prune(graph: Graph) -> None:
    """Drop artefact and distillation tasks that nothing left to do needs (their sets are cached)."""
    needed: set[str] = set()
    for task in reversed(graph.order()):
        if task.stage in ROW_STAGES:
            if not task.done:
                needed.update(task.deps)
            continue
        if task.key in needed and not task.done:
            needed.update(task.deps)
    graph.tasks = {k: t for k, t in graph.tasks.items() if t.stage in ROW_STAGES or k in needed or t.done}


def plan(sweep: Sweep, executor: str) -> str:
    """The graph by stage: tasks, how many are cached, and an estimate of device-hours still to spend."""
    from tabulate import tabulate

    device_type = sweep.opts.device.type
    stages: dict[str, dict[str, Any]] = {}
    for task in sweep.graph.order():
        st = stages.setdefault(task.stage, {"tasks": 0, "cached": 0, "recorded": 0.0, "flops": 0.0, "steps": 0.0, "unknown": 0})
        st["tasks"] += 1
        if task.done:
            st["cached"] += 1
        elif task.seconds is not None:
            st["recorded"] += task.seconds / 3600.0
        elif task.flops is not None:
            st["flops"] += task.flops * (training_rate_factor(device_type) if task.stage in TRAINING_STAGES else 1.0)
            st["steps"] += task.steps
        else:
            st["unknown"] += 1
    table, total = [], 0.0
    for name, st in stages.items():
        est = st["recorded"] + hours(st["flops"], device_type, st["steps"])
        total += est
        basis = [b for b, on in (("recorded times", st["recorded"]), ("FLOPs", st["flops"])) if on]
        if st["unknown"]:
            basis.append(f"{st['unknown']} without estimate")
        table.append([name, st["tasks"], st["cached"], st["tasks"] - st["cached"], f"{est:.3g}", ", ".join(basis) or "—"])
    lines = [f"plan ({executor} executor, {device_type}): {len(sweep.graph.tasks)} tasks, "
             f"{sum(not t.done for t in sweep.graph.order())} to run",
             tabulate(table, headers=["stage", "tasks", "cached", "to run", "device-hours", "estimated from"], tablefmt="github"),
             f"total: about {total:.3g} device-hours. FLOP estimates assume "
             f"{sweep_rate(device_type)} effective; recorded wall times (earlier rows, expert files) are used where present."]
    return "\n".join(lines)


def sweep_rate(device_type: str) -> str:
    rate = ASSUMED_FLOPS_PER_S.get(device_type, ASSUMED_FLOPS_PER_S["cpu"])
    factor = EVAL_TRAIN_FACTOR.get(device_type, EVAL_TRAIN_FACTOR["cpu"])
    step = STEP_SECONDS.get(device_type, STEP_SECONDS["cpu"])
    real = TRAIN_FACTOR * training_rate_factor(device_type)
    return (f"{rate / 1e12:g} TFLOP/s, {factor:g} forward passes per trained image of an evaluation network and "
            f"{real:.2g} of a real-data training, and {step * 1e3:g} ms per optimizer step")


def collect(req: Request, opts: Any) -> list[dict[str, Any]]:
    """Every stored row a request covers: the ones just written and the ones found from earlier runs."""
    card = req.card
    archs = list(opts.archs or card.archs)
    tasks = row_tasks(card, opts)
    wanted = {(req.run_id, card.id, card.hash, arch, s, t) for arch in archs for s in eval_seeds(card, opts) for t in tasks}
    return [r for r in opts.store.rows() if row_key(r) in wanted]
