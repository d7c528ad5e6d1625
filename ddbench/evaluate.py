"""The evaluation engine: train fresh networks on a distilled set under a card, test on real data.

The engine never knows how a set was made. `evaluate_method` distils (or reuses a cached set)
and hands the set(s) to the same code path `evaluate_set` uses for a file made anywhere. Rows
are appended to the store as soon as each (arch, seed group) finishes; rows already present are
skipped, so a killed run resumes without losing or duplicating anything.
"""
from __future__ import annotations

import hashlib
import json
import logging
import resource
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ddbench.augment import DSA
from ddbench.data import ImageDataset, load_dataset
from ddbench.distilled import DistilledSet
from ddbench.errors import DDBenchError
from ddbench.method import DistillContext, Method
from ddbench.paths import user_cache_root
from ddbench.precision import describe as describe_precision
from ddbench.precision import precision_scope
from ddbench.preprocess import ZCA, ImageSpace
from ddbench.protocol import MAX_SEEDS, ProtocolCard
from ddbench.provenance import code_version, device_name, git_sha
from ddbench.results import ResultStore, Row, row_key
from ddbench.train import accuracy, choose_mode, train_networks

log = logging.getLogger(__name__)


@dataclass
class EvalOptions:
    device: torch.device
    store: ResultStore
    data_root: str | Path | None = None
    archs: Sequence[str] | None = None  # default: the card's
    seeds: int | None = None  # default: the card's
    mode: str = "auto"
    progress: bool = True
    cache_dir: Path = field(default_factory=lambda: user_cache_root())
    snapshots: tuple[int, ...] = ()  # distil: also keep the set after these outer steps
    only_seeds: tuple[int, ...] | None = None  # exactly these evaluation seeds (ddbench verify re-runs one)
    external: bool = False  # evaluate_set: the set comes from outside ddbench's registry (its method name is a claim)


def card_space(card: ProtocolCard, train: ImageDataset) -> ImageSpace:
    """The image space a card's methods work in: the card's or else the dataset's normalisation (ZCA added by the engine)."""
    if card.normalize and card.mean:
        if len(card.mean) != train.channels:
            raise DDBenchError(f"card '{card.id}' normalises {len(card.mean)} channels; {train.name} has {train.channels}")
        return ImageSpace(tuple(card.mean), tuple(card.std))
    if card.normalize:
        return ImageSpace(tuple(train.mean), tuple(train.std))
    return ImageSpace(tuple(0.0 for _ in train.mean), tuple(1.0 for _ in train.std))


def check_fits(dset: DistilledSet, card: ProtocolCard, train: ImageDataset) -> None:
    """Refuse a set that the card cannot honestly evaluate, with one line saying why."""
    want = (train.channels, *train.image_size)
    if dset.image_shape != want:
        raise DDBenchError(f"the set's images are {'×'.join(map(str, dset.image_shape))} (C×H×W) but card "
                           f"'{card.id}' evaluates on {card.dataset} at {'×'.join(map(str, want))}")
    if dset.num_classes != train.num_classes:
        raise DDBenchError(f"the set has {dset.num_classes} classes but {card.dataset} has {train.num_classes}")
    if dset.dataset != train.name:
        raise DDBenchError(f"the set was distilled from '{dset.dataset}' but card '{card.id}' evaluates on '{train.name}'")
    if card.kind == "ssl-transfer":
        if len(dset.images) > card.budget:
            raise DDBenchError(f"the set holds {len(dset.images)} images; card '{card.id}' allows {card.budget}")
        if dset.label_mode not in ("regression", "none"):
            raise DDBenchError(f"card '{card.id}' pre-trains on target vectors or images alone; the set has {dset.label_mode} labels")
        return
    if dset.ipc != card.ipc or len(dset.images) > card.ipc * train.num_classes:
        raise DDBenchError(f"the set holds {len(dset.images)} images (ipc {dset.ipc}); card '{card.id}' allows "
                           f"ipc {card.ipc} = {card.ipc * train.num_classes} images")
    if card.kind == "dd-native":
        info = dset.extra.get("dd") or {}
        if info.get("init") != card.init:
            raise DDBenchError(f"card '{card.id}' evaluates {card.init}-init DD sets; this set is "
                               f"{info.get('init') or 'not a DD set'}")
        if info.get("arch") not in card.archs:
            raise DDBenchError(f"card '{card.id}' trains {', '.join(card.archs)}; the set was distilled for {info.get('arch')}")
    if dset.label_mode == "hard" and len(dset.labels):
        counts = torch.bincount(dset.labels, minlength=dset.num_classes)
        worst = int(counts.argmax())
        if int(counts[worst]) > card.ipc:
            raise DDBenchError(f"the set holds {int(counts[worst])} images of class {worst}; card '{card.id}' allows "
                               f"ipc {card.ipc} per class")
    allowed = {"hard": {"hard"}, "soft": {"hard", "soft"}, "regression": {"regression"}}[card.labels]
    if dset.label_mode not in allowed:
        raise DDBenchError(f"card '{card.id}' takes {card.labels} labels; the set has {dset.label_mode} labels")
    if dset.label_mode == "soft" and dset.labels.shape[1] != train.num_classes:
        raise DDBenchError(f"soft labels have {dset.labels.shape[1]} columns; {card.dataset} has {train.num_classes} classes")


_ZCA_FITS: dict[tuple, ZCA] = {}


def _training_space(dset: DistilledSet, card: ProtocolCard, train: ImageDataset) -> tuple[torch.Tensor, ImageSpace]:
    """The set's images and the space the test set must be mapped into (ZCA fitted if the card asks)."""
    if card.zca and dset.space.zca is None:
        key = (train.name, train.source, dset.space.mean, dset.space.std)
        if key not in _ZCA_FITS:  # one fit on the training set per process, shared by every set
            _ZCA_FITS[key] = ZCA.fit(ImageSpace(dset.space.mean, dset.space.std).from_uint8(train.x_train))
        zca = _ZCA_FITS[key]
        return zca.apply(dset.images), ImageSpace(dset.space.mean, dset.space.std, zca)
    return dset.images, dset.space


def _targets(dset: DistilledSet, card: ProtocolCard) -> tuple[torch.Tensor, str]:
    if card.labels == "soft" and dset.label_mode == "hard":
        return torch.nn.functional.one_hot(dset.labels, dset.num_classes).float(), "soft"
    return (dset.labels if dset.label_mode == "hard" else dset.labels.float()), dset.label_mode


def config_hash(method: str, config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([method, config], sort_keys=True, default=str).encode()).hexdigest()[:12]


def _peak_memory_mb(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_max_rss"


def _row(base_row: Row, dset: DistilledSet, device: torch.device, **fields: Any) -> Row:
    """A result row: the run's provenance, the set's, the device's peak memory so far, and `fields`."""
    peak, peak_kind = _peak_memory_mb(device)
    return {**base_row, "method": dset.method, "method_config": dset.method_config, "set_id": dset.set_id,
            "distill_seed": dset.distill_seed, "distill_time_s": dset.extra.get("distill_time_s"),
            "snapshot_step": dset.extra.get("snapshot_step"),
            "peak_mem_mb": round(peak, 1), "peak_mem_kind": peak_kind, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **fields}


@dataclass
class _Job:
    """Seeds of one arch that train together, on one set (shared) or one set per seed."""

    arch: str
    seeds: list[int]
    sets: list[DistilledSet]


@dataclass
class _Prepared:
    """A set as training sees it: images (in the card's space) and targets on the device, lr, label mode."""

    dset: DistilledSet
    images: torch.Tensor
    targets: torch.Tensor
    label_mode: str
    lr: float
    space: ImageSpace

    def stack_key(self) -> tuple:
        return (self.label_mode, float(self.lr), tuple(self.images.shape), tuple(self.targets.shape), self.space)


def _prepare(dset: DistilledSet, card: ProtocolCard, train: ImageDataset, device: torch.device) -> _Prepared:
    check_fits(dset, card, train)
    images, space = _training_space(dset, card, train)
    targets, label_mode = _targets(dset, card)
    lr = dset.learned_lr if card.train.use_learned_lr and dset.learned_lr else card.train.lr
    return _Prepared(dset, images.to(device), targets.to(device), label_mode, lr, space)


def _groups(job: _Job, prepared: list[_Prepared]) -> list[tuple[list[int], list[_Prepared]]]:
    """(seeds, their sets) that can train stacked: one shared set, or per-seed sets alike in shape, lr and space."""
    if len(prepared) == 1:
        return [(job.seeds, prepared)]
    if len({p.stack_key() for p in prepared}) == 1:
        return [(job.seeds, prepared)]
    return [([seed], [p]) for seed, p in zip(job.seeds, prepared)]


class _Clock:
    """Per-network wall time: each network's own time in a loop, the group's time shared under vmap."""

    def __init__(self, mode: str, count: int) -> None:
        self.mode, self.count = mode, count
        self.last = time.perf_counter()
        self.shared: float | None = None

    def lap(self) -> float:
        now = time.perf_counter()
        if self.mode == "vmap":
            if self.shared is None:
                self.shared = (now - self.last) / self.count
            return self.shared
        seconds, self.last = now - self.last, now
        return seconds

    def restart(self) -> None:
        if self.mode != "vmap":
            self.last = time.perf_counter()


def _run_jobs(jobs: list[_Job], card: ProtocolCard, train: ImageDataset, opts: EvalOptions,
              base_row: dict[str, Any]) -> None:
    """Train and test every job, appending each network's row as soon as it is done."""
    device = opts.device
    test_sets: dict[ImageSpace, torch.Tensor] = {}
    y_test = train.y_test.to(device)
    augment = DSA(card.train.dsa_strategy) if card.train.augment == "dsa" else None
    for job in jobs:
        prepared = [_prepare(d, card, train, device) for d in job.sets]
        for seeds, sets in _groups(job, prepared):
            first = sets[0]
            if first.space not in test_sets:
                test_sets[first.space] = first.space.from_uint8(train.x_test, device)
            x_test = test_sets[first.space]
            per_seed = len(sets) > 1
            x = torch.stack([p.images for p in sets]) if per_seed else first.images
            y = torch.stack([p.targets for p in sets]) if per_seed else first.targets
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            mode = choose_mode(opts.mode, job.arch, seeds, x, y, first.label_mode, card.train, first.lr,
                               train.num_classes, augment, per_seed_data=per_seed)
            clock = _Clock(mode, len(seeds))

            def save_row(k: int, model: torch.nn.Module, seeds=seeds, sets=sets, x_test=x_test, clock=clock, mode=mode) -> None:
                seconds = clock.lap()
                p = sets[k] if per_seed else sets[0]
                acc = accuracy(model, x_test, y_test)
                opts.store.append([_row(
                    base_row, p.dset, device, arch=job.arch, seed=seeds[k], accuracy=round(100.0 * acc, 4),
                    n_test=len(y_test), label_mode=p.label_mode, lr=p.lr, learned_lr_used=p.lr != card.train.lr,
                    batch_mode=f"vmap{len(seeds)}" if mode == "vmap" else "loop", wall_time_s=round(seconds, 3),
                )])
                log.info(f"  {card.id} {job.arch} seed {seeds[k]}: {100 * acc:.2f}%")
                clock.restart()

            train_networks(job.arch, seeds, x, y, first.label_mode, card.train, first.lr, train.num_classes, augment,
                           mode=mode, progress=opts.progress, per_seed_data=per_seed, on_trained=save_row,
                           desc=f"{card.id} {job.arch} seed{'s' if len(seeds) > 1 else ''} {','.join(map(str, seeds))}")


def _run_native_jobs(jobs: list[_Job], card: ProtocolCard, train: ImageDataset, opts: EvalOptions,
                     base_row: dict[str, Any]) -> None:
    """dd-native cards: every seed's network trained with the set's own steps, all at once."""
    from ddbench.native import evaluate_native

    y_test = train.y_test.to(opts.device)
    for job in jobs:
        # one set for every seed, or (one set per seed) seed i with set i
        pairs = [(job.seeds, job.sets[0])] if len(job.sets) == 1 else [([s], d) for s, d in zip(job.seeds, job.sets)]
        for seeds, dset in pairs:
            check_fits(dset, card, train)
            if job.arch != dset.extra["dd"]["arch"]:
                raise DDBenchError(f"a DD set trains the arch it was distilled for ({dset.extra['dd']['arch']}), not {job.arch}")
            if opts.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(opts.device)
            x_test = dset.space.from_uint8(train.x_test, opts.device)
            result = evaluate_native(dset, job.arch, seeds, x_test, y_test, opts.device, opts.progress)
            accs = result.accuracies
            opts.store.append([_row(
                base_row, dset, opts.device, arch=job.arch, seed=seed, accuracy=round(100.0 * acc, 4), n_test=len(y_test),
                init_accuracy=round(100.0 * before, 4), label_mode=dset.label_mode, lr=None, learned_lr_used=True,
                batch_mode=f"native-vmap{len(seeds)}", wall_time_s=round(result.seconds / len(seeds), 4),
            ) for seed, acc, before in zip(seeds, accs, result.init_accuracies)])
            log.info(f"  {card.id} {job.arch}: {len(accs)} networks, mean {100 * sum(accs) / len(accs):.2f}% "
                     f"(before training {100 * sum(result.init_accuracies) / len(accs):.2f}%)")


def _run_ssl_jobs(jobs: list[_Job], card: ProtocolCard, train: ImageDataset, opts: EvalOptions,
                  base_row: dict[str, Any]) -> None:
    """ssl-transfer cards: per (arch, seed) pre-train one encoder, probe every downstream set and fraction."""
    from ddbench.data import load_dataset as load
    from ddbench.transfer import pretrain_encoder, probe_accuracies, task_name

    downstream = {}
    for name in card.probe.downstream:
        try:
            downstream[name] = load(name, opts.data_root)
        except DDBenchError:
            continue  # absent: _pending said so in one line
    for job in jobs:
        dset = job.sets[0]
        check_fits(dset, card, train)
        for seed in job.seeds:
            if opts.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(opts.device)
            start = time.perf_counter()
            encoder = pretrain_encoder(job.arch, dset, card.pretrain, seed, opts.device, progress=opts.progress)
            rows = []
            for name, data in downstream.items():
                for fraction, acc in probe_accuracies(encoder, data, card.probe, seed, opts.device).items():
                    rows.append((task_name(name, fraction), name, fraction, acc))
            seconds = time.perf_counter() - start
            opts.store.append([_row(
                base_row, dset, opts.device, arch=job.arch, seed=seed, task=task, downstream=name, label_fraction=fraction,
                accuracy=round(100.0 * acc, 4), n_test=len(downstream[name].y_test), label_mode=dset.label_mode,
                lr=dset.learned_lr, learned_lr_used=bool(dset.learned_lr), batch_mode="loop", wall_time_s=round(seconds, 3),
            ) for task, name, fraction, acc in rows])
            log.info(f"  {card.id} {dset.method} {job.arch} seed {seed}: " +
                     ", ".join(f"{t} {100 * a:.1f}%" for t, _, _, a in rows))


def _runner(card: ProtocolCard):
    return {"dd-native": _run_native_jobs, "ssl-transfer": _run_ssl_jobs}.get(card.kind, _run_jobs)


def _base_row(card: ProtocolCard, run_id: str, device: torch.device, train: ImageDataset) -> Row:
    from ddbench import __version__
    from ddbench.results import ROW_SCHEMA

    return {
        "schema": ROW_SCHEMA, "run_id": run_id, "protocol": card.id, "protocol_version": card.version,
        "protocol_hash": card.hash, "protocol_standard": card.standard, "protocol_overrides": card.overrides,
        "precision": card.precision, "precision_detail": describe_precision(card.precision, device),
        "dataset": card.dataset, "data_fingerprint": train.fingerprint, "data_complete": train.complete,
        "ipc": card.ipc, "epochs": card.train.epochs,
        "ddbench_version": __version__, "git_sha": git_sha(), "code_version": code_version(),
        "torch_version": torch.__version__, "device": device_name(device), "host": socket.gethostname(),
    }


_SKIP_REPORTED: set[tuple[str, str]] = set()


def _tasks(card: ProtocolCard, opts: EvalOptions, quiet: bool = True) -> list[str]:
    """The row tasks of a card: "" for one row per (arch, seed); per downstream set and label fraction
    for ssl-transfer cards (downstream sets absent from the data root are skipped, with one line each)."""
    if card.kind != "ssl-transfer":
        return [""]
    from ddbench.data import dataset_status
    from ddbench.transfer import task_name

    tasks = []
    for name in card.probe.downstream:
        if not dataset_status(name, opts.data_root)["present"]:
            if not quiet and (str(opts.data_root), name) not in _SKIP_REPORTED:
                _SKIP_REPORTED.add((str(opts.data_root), name))
                log.info(f"  skipping downstream '{name}': not found under the data root (`ddbench data prepare {name}`)")
            continue
        tasks += [task_name(name, f) for f in card.probe.fractions]
    if not tasks:
        raise DDBenchError(f"card '{card.id}': none of its downstream datasets ({', '.join(card.probe.downstream)}) is present "
                           f"under the data root; run `ddbench data prepare NAME` for at least one")
    return tasks


def _check_request(opts: EvalOptions) -> None:
    """What must hold before any work: a bounded number of seeds and a writable store."""
    if opts.seeds is not None and not 1 <= opts.seeds <= MAX_SEEDS:
        raise DDBenchError(f"seeds must be 1..{MAX_SEEDS}, got {opts.seeds}")
    opts.store.check_writable()


def _check_same_data(card: ProtocolCard, run_id: str, train: ImageDataset, opts: EvalOptions) -> None:
    """Rows of this run stored earlier must come from the very same data; resuming on other data would mix."""
    for row in opts.store.rows():
        if row["run_id"] == run_id and row["protocol"] == card.id and row.get("data_fingerprint") not in (None, train.fingerprint):
            raise DDBenchError(f"{opts.store.path} already holds rows of this run on card '{card.id}' made on other "
                               f"{card.dataset} data (fingerprint {row['data_fingerprint']}, now {train.fingerprint}, "
                               f"{train.source}); use another --results store or remove those rows")


def _check_class_sizes(card: ProtocolCard, train: ImageDataset) -> None:
    """A class with fewer training images than the IPC would silently give a smaller set."""
    if card.kind == "ssl-transfer":
        return
    counts = train.class_counts()
    smallest = int(counts.argmin())
    if int(counts[smallest]) < card.ipc:
        raise DDBenchError(f"class {train.class_names[smallest]!r} of {train.name} ({train.source}) has {int(counts[smallest])} "
                           f"training images; card '{card.id}' needs ipc {card.ipc} per class")


def _seeds(card: ProtocolCard, opts: EvalOptions) -> list[int]:
    """The evaluation seeds of a request: `only_seeds` (verify), else 0..N-1 (--seeds, else the card's)."""
    if opts.only_seeds is not None:
        return list(opts.only_seeds)
    return list(range(opts.seeds if opts.seeds is not None else card.seeds))


def _pending(card: ProtocolCard, run_id: str, opts: EvalOptions) -> list[tuple[str, list[int]]]:
    archs = list(opts.archs or card.archs)
    seeds = _seeds(card, opts)
    tasks = _tasks(card, opts, quiet=False)
    done = opts.store.keys()
    out = []
    for arch in archs:
        todo = [s for s in seeds if any((run_id, card.id, card.hash, arch, s, t) not in done for t in tasks)]
        if len(todo) < len(seeds):
            log.info(f"  {card.id} {arch}: {len(seeds) - len(todo)} of {len(seeds)} seed(s) already in {opts.store.path}; skipping them")
        if todo:
            out.append((arch, todo))
    return out


def evaluate_set(dset: DistilledSet, card: ProtocolCard, opts: EvalOptions) -> list[dict[str, Any]]:
    """Evaluate a distilled set (made anywhere) under `card`; returns all rows the request covers."""
    _check_request(opts)
    train = load_dataset(card.dataset, opts.data_root)
    check_fits(dset, card, train)
    run_id = f"set-{dset.set_id}"
    _check_same_data(card, run_id, train, opts)
    jobs = [_Job(arch, seeds, [dset]) for arch, seeds in _pending(card, run_id, opts)]
    base = _base_row(card, run_id, opts.device, train)
    base["external"] = opts.external
    with precision_scope(card.precision, opts.device):
        _runner(card)(jobs, card, train, opts, base)
    return _collect(card, run_id, opts)


def distill_cached(method: Method, card: ProtocolCard, train: ImageDataset, seed: int, opts: EvalOptions) -> DistilledSet:
    """Distil with `seed`, reusing a set cached from an earlier (possibly interrupted) run.

    The set records its distillation wall time in `extra["distill_time_s"]`."""
    _check_class_sizes(card, train)
    config = method.config_for(card)
    space = card_space(card, train)
    path = set_cache_path(method, card, train, seed, opts)
    if path.is_file() and all(snapshot_path(path, step).is_file() for step in opts.snapshots):
        try:
            return DistilledSet.load(path)
        except DDBenchError:
            path.unlink(missing_ok=True)
    ctx = DistillContext(card=card, device=opts.device, seed=seed, config=config, space=space,
                         method_name=method.name, cache_dir=opts.cache_dir, progress=opts.progress,
                         snapshots=tuple(opts.snapshots), snapshot_path=lambda step: snapshot_path(path, step))
    start = time.perf_counter()
    with precision_scope(card.precision, opts.device):
        dset = method.distill(train, card.ipc, ctx)
    dset.extra.setdefault("distill_time_s", round(time.perf_counter() - start, 3))
    dset.save(path)
    return dset


def set_cache_path(method: Method, card: ProtocolCard, train: ImageDataset, seed: int, opts: EvalOptions) -> Path:
    """The cache file of the set `method` distils under `card` with `seed` (keyed by everything that decides it)."""
    space = card_space(card, train)
    key = config_hash(method.name, {"config": method.identity_config(card), "dataset": train.name, "source": train.source,
                                    "ipc": card.ipc, "budget": card.budget, "space": [space.mean, space.std], "seed": seed})
    return opts.cache_dir / "sets" / f"{method.name}-{card.dataset}-ipc{card.ipc}-seed{seed}-{key}.safetensors"


def snapshot_path(final: Path, step: int) -> Path:
    """Where the snapshot after `step` outer steps of the run that ends in `final` lives."""
    return final.with_name(f"{final.stem}-step{step}{final.suffix}")


def evaluate_method(method: Method, card: ProtocolCard, opts: EvalOptions) -> list[dict[str, Any]]:
    """Distil with `method` under `card` (cached) and evaluate; returns all rows the request covers."""
    if card.kind not in method.kinds:
        raise DDBenchError(f"method '{method.name}' does not support {card.kind} cards like '{card.id}'")
    _check_request(opts)
    run_id = f"cfg-{config_hash(method.name, method.identity_config(card))}"
    pending = _pending(card, run_id, opts)
    if not pending:
        return _collect(card, run_id, opts)
    train = load_dataset(card.dataset, opts.data_root)
    _check_same_data(card, run_id, train, opts)
    sets: dict[int, DistilledSet] = {}

    def set_for(seed: int) -> DistilledSet:
        if seed not in sets:
            sets[seed] = distill_cached(method, card, train, seed, opts)
        return sets[seed]

    if method.sets_per_seed(card):
        jobs = [_Job(arch, seeds, [set_for(s) for s in seeds]) for arch, seeds in pending]
    else:
        jobs = [_Job(arch, seeds, [set_for(0)]) for arch, seeds in pending]
    with precision_scope(card.precision, opts.device):
        _runner(card)(jobs, card, train, opts, _base_row(card, run_id, opts.device, train))
    return _collect(card, run_id, opts)


def _collect(card: ProtocolCard, run_id: str, opts: EvalOptions) -> list[dict[str, Any]]:
    """Every stored row this request covers: the ones just written and the ones found from earlier runs."""
    archs = list(opts.archs or card.archs)
    seeds = _seeds(card, opts)
    tasks = _tasks(card, opts)
    wanted = {(run_id, card.id, card.hash, arch, s, t) for arch in archs for s in seeds for t in tasks}
    return [r for r in opts.store.rows() if row_key(r) in wanted]
