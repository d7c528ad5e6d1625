"""Protocol kinds: what a card's `kind` means, one registered class each.

A kind says which sets a card accepts, which rows one (arch, seed) produces and how they are
made. The engine only asks the kind of a card; a new kind is one class here (or in a plug-in)
decorated with `@register_kind`:

- `supervised`: train fresh networks on the set with the card's recipe, test on the real test split.
- `dd-native`: Dataset Distillation's own regime, the set's learned steps (ddbench.native).
- `ssl-transfer`: pre-train an encoder on the set, probe it on downstream sets (ddbench.transfer).
"""
from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch

from ddbench.augment import DSA
from ddbench.data import ImageDataset
from ddbench.distilled import DistilledSet
from ddbench.errors import DDBenchError
from ddbench.preprocess import ZCA, ImageSpace
from ddbench.protocol import ProtocolCard
from ddbench.train import accuracy, choose_mode, train_networks

log = logging.getLogger(__name__)

Row = dict[str, Any]
Emit = Callable[[list[Row]], None]


@dataclass
class EvalJob:
    """Seeds of one arch evaluated together, on one set (shared by every seed) or one set per seed."""

    arch: str
    seeds: list[int]
    sets: list[DistilledSet]


@dataclass
class Runtime:
    """What an evaluation may use where it runs: the device, loaded datasets, batching mode, progress bars."""

    device: torch.device
    datasets: dict[str, ImageDataset]
    mode: str = "auto"
    progress: bool = True


class ProtocolKind:
    """Base class of a protocol kind; subclasses set `name` and implement `run`."""

    name: ClassVar[str] = ""
    stage: ClassVar[str] = "evaluate"  # the job-graph stage of its evaluations

    def datasets(self, card: ProtocolCard) -> list[str]:
        """Every dataset an evaluation under `card` reads."""
        return [card.dataset]

    def row_tasks(self, card: ProtocolCard, present: Callable[[str], bool]) -> list[str]:
        """The rows one (arch, seed) produces, by task name ("" = one row)."""
        return [""]

    def check_set(self, dset: DistilledSet, card: ProtocolCard, train: ImageDataset) -> None:
        """Refuse a set this kind cannot honestly evaluate under `card` (one line)."""

    def run(self, job: EvalJob, card: ProtocolCard, train: ImageDataset, rt: Runtime, base_row: Row, emit: Emit) -> None:
        raise NotImplementedError


_KINDS: dict[str, ProtocolKind] = {}


def register_kind(cls: type[ProtocolKind]) -> type[ProtocolKind]:
    if not cls.name or cls.name in _KINDS:
        raise DDBenchError(f"protocol kind '{cls.name}' needs a new, non-empty name")
    _KINDS[cls.name] = cls()
    return cls


def get_kind(name: str) -> ProtocolKind:
    if name not in _KINDS:
        raise DDBenchError(f"protocol kind '{name}' is unknown; known: {', '.join(sorted(_KINDS))}")
    return _KINDS[name]


def kind_names() -> tuple[str, ...]:
    return tuple(sorted(_KINDS))


# ---------------------------------------------------------------------------------------------- checks


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
    get_kind(card.kind).check_set(dset, card, train)


def _check_class_budget(dset: DistilledSet, card: ProtocolCard, train: ImageDataset) -> None:
    if dset.ipc != card.ipc or len(dset.images) > card.ipc * train.num_classes:
        raise DDBenchError(f"the set holds {len(dset.images)} images (ipc {dset.ipc}); card '{card.id}' allows "
                           f"ipc {card.ipc} = {card.ipc * train.num_classes} images")


def _check_per_class(dset: DistilledSet, card: ProtocolCard) -> None:
    if dset.label_mode == "hard" and len(dset.labels):
        counts = torch.bincount(dset.labels, minlength=dset.num_classes)
        worst = int(counts.argmax())
        if int(counts[worst]) > card.ipc:
            raise DDBenchError(f"the set holds {int(counts[worst])} images of class {worst}; card '{card.id}' allows "
                               f"ipc {card.ipc} per class")


# ---------------------------------------------------------------------------------------------- rows


def _peak_memory_mb(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_max_rss"


def make_row(base_row: Row, dset: DistilledSet, device: torch.device, **fields: Any) -> Row:
    """A result row: the run's provenance, the set's, the device's peak memory so far, and `fields`."""
    peak, peak_kind = _peak_memory_mb(device)
    return {**base_row, "method": dset.method, "method_config": dset.method_config, "set_id": dset.set_id,
            "distill_seed": dset.distill_seed, "distill_time_s": dset.extra.get("distill_time_s"),
            "snapshot_step": dset.extra.get("snapshot_step"),
            "peak_mem_mb": round(peak, 1), "peak_mem_kind": peak_kind, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **fields}


def base_row(card: ProtocolCard, run_id: str, device: torch.device, train: ImageDataset) -> Row:
    """The provenance every row of one evaluation shares (made where the evaluation runs)."""
    import socket

    from ddbench import __version__
    from ddbench.precision import describe as describe_precision
    from ddbench.provenance import code_version, device_name, git_sha
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


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


# ---------------------------------------------------------------------------------------------- supervised

_ZCA_FITS: dict[tuple, ZCA] = {}


def training_space(dset: DistilledSet, card: ProtocolCard, train: ImageDataset) -> tuple[torch.Tensor, ImageSpace]:
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
    images, space = training_space(dset, card, train)
    targets, label_mode = _targets(dset, card)
    lr = dset.learned_lr if card.train.use_learned_lr and dset.learned_lr else card.train.lr
    return _Prepared(dset, images.to(device), targets.to(device), label_mode, lr, space)


def _groups(job: EvalJob, prepared: list[_Prepared]) -> list[tuple[list[int], list[_Prepared]]]:
    """(seeds, their sets) that can train stacked: one shared set, or per-seed sets alike in shape, lr and space."""
    if len(prepared) == 1 or len({p.stack_key() for p in prepared}) == 1:
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


@register_kind
class Supervised(ProtocolKind):
    """Fresh networks trained on the set with the card's recipe, tested on the real test split."""

    name = "supervised"

    def check_set(self, dset: DistilledSet, card: ProtocolCard, train: ImageDataset) -> None:
        _check_class_budget(dset, card, train)
        self.check_labels(dset, card, train)

    def check_labels(self, dset: DistilledSet, card: ProtocolCard, train: ImageDataset) -> None:
        _check_per_class(dset, card)
        allowed = {"hard": {"hard"}, "soft": {"hard", "soft"}, "regression": {"regression"}}[card.labels]
        if dset.label_mode not in allowed:
            raise DDBenchError(f"card '{card.id}' takes {card.labels} labels; the set has {dset.label_mode} labels")
        if dset.label_mode == "soft" and dset.labels.shape[1] != train.num_classes:
            raise DDBenchError(f"soft labels have {dset.labels.shape[1]} columns; {card.dataset} has {train.num_classes} classes")

    def run(self, job: EvalJob, card: ProtocolCard, train: ImageDataset, rt: Runtime, base_row: Row, emit: Emit) -> None:
        device = rt.device
        y_test = train.y_test.to(device)
        augment = DSA(card.train.dsa_strategy) if card.train.augment == "dsa" else None
        prepared = [_prepare(d, card, train, device) for d in job.sets]
        for seeds, sets in _groups(job, prepared):
            first = sets[0]
            x_test = first.space.from_uint8(train.x_test, device)
            per_seed = len(sets) > 1
            x = torch.stack([p.images for p in sets]) if per_seed else first.images
            y = torch.stack([p.targets for p in sets]) if per_seed else first.targets
            _reset_peak(device)
            mode = choose_mode(rt.mode, job.arch, seeds, x, y, first.label_mode, card.train, first.lr,
                               train.num_classes, augment, per_seed_data=per_seed)
            clock = _Clock(mode, len(seeds))

            def save_row(k: int, model: torch.nn.Module, seeds=seeds, sets=sets, x_test=x_test, clock=clock, mode=mode) -> None:
                seconds = clock.lap()
                p = sets[k] if per_seed else sets[0]
                acc = accuracy(model, x_test, y_test)
                emit([make_row(
                    base_row, p.dset, device, arch=job.arch, seed=seeds[k], accuracy=round(100.0 * acc, 4),
                    n_test=len(y_test), label_mode=p.label_mode, lr=p.lr, learned_lr_used=p.lr != card.train.lr,
                    batch_mode=f"vmap{len(seeds)}" if mode == "vmap" else "loop", wall_time_s=round(seconds, 3),
                )])
                log.info(f"  {card.id} {job.arch} seed {seeds[k]}: {100 * acc:.2f}%")
                clock.restart()

            train_networks(job.arch, seeds, x, y, first.label_mode, card.train, first.lr, train.num_classes, augment,
                           mode=mode, progress=rt.progress, per_seed_data=per_seed, on_trained=save_row,
                           desc=f"{card.id} {job.arch} seed{'s' if len(seeds) > 1 else ''} {','.join(map(str, seeds))}")


@register_kind
class DDNative(Supervised):
    """dd-native cards: every seed's network trained with the set's own steps, all at once."""

    name = "dd-native"

    def check_set(self, dset: DistilledSet, card: ProtocolCard, train: ImageDataset) -> None:
        _check_class_budget(dset, card, train)
        info = dset.extra.get("dd") or {}
        if info.get("init") != card.init:
            raise DDBenchError(f"card '{card.id}' evaluates {card.init}-init DD sets; this set is "
                               f"{info.get('init') or 'not a DD set'}")
        if info.get("arch") not in card.archs:
            raise DDBenchError(f"card '{card.id}' trains {', '.join(card.archs)}; the set was distilled for {info.get('arch')}")
        self.check_labels(dset, card, train)

    def run(self, job: EvalJob, card: ProtocolCard, train: ImageDataset, rt: Runtime, base_row: Row, emit: Emit) -> None:
        from ddbench.native import evaluate_native

        y_test = train.y_test.to(rt.device)
        # one set for every seed, or (one set per seed) seed i with set i
        pairs = [(job.seeds, job.sets[0])] if len(job.sets) == 1 else [([s], d) for s, d in zip(job.seeds, job.sets)]
        for seeds, dset in pairs:
            check_fits(dset, card, train)
            if job.arch != dset.extra["dd"]["arch"]:
                raise DDBenchError(f"a DD set trains the arch it was distilled for ({dset.extra['dd']['arch']}), not {job.arch}")
            _reset_peak(rt.device)
            x_test = dset.space.from_uint8(train.x_test, rt.device)
            result = evaluate_native(dset, job.arch, seeds, x_test, y_test, rt.device, rt.progress)
            accs = result.accuracies
            emit([make_row(
                base_row, dset, rt.device, arch=job.arch, seed=seed, accuracy=round(100.0 * acc, 4), n_test=len(y_test),
                init_accuracy=round(100.0 * before, 4), label_mode=dset.label_mode, lr=None, learned_lr_used=True,
                batch_mode=f"native-vmap{len(seeds)}", wall_time_s=round(result.seconds / len(seeds), 4),
            ) for seed, acc, before in zip(seeds, accs, result.init_accuracies)])
            log.info(f"  {card.id} {job.arch}: {len(accs)} networks, mean {100 * sum(accs) / len(accs):.2f}% "
                     f"(before training {100 * sum(result.init_accuracies) / len(accs):.2f}%)")


@register_kind
class SSLTransfer(ProtocolKind):
    """ssl-transfer cards: per (arch, seed) pre-train one encoder, probe every downstream set and label fraction."""

    name = "ssl-transfer"
    stage = "probe"

    def datasets(self, card: ProtocolCard) -> list[str]:
        return [card.dataset, *card.probe.downstream]

    def row_tasks(self, card: ProtocolCard, present: Callable[[str], bool]) -> list[str]:
        from ddbench.transfer import task_name

        tasks = [task_name(name, f) for name in card.probe.downstream if present(name) for f in card.probe.fractions]
        if not tasks:
            raise DDBenchError(f"card '{card.id}': none of its downstream datasets ({', '.join(card.probe.downstream)}) is "
                               f"present under the data root; run `ddbench data prepare NAME` for at least one")
        return tasks

    def check_set(self, dset: DistilledSet, card: ProtocolCard, train: ImageDataset) -> None:
        if len(dset.images) > card.budget:
            raise DDBenchError(f"the set holds {len(dset.images)} images; card '{card.id}' allows {card.budget}")
        if dset.label_mode not in ("regression", "none"):
            raise DDBenchError(f"card '{card.id}' pre-trains on target vectors or images alone; the set has {dset.label_mode} labels")

    def run(self, job: EvalJob, card: ProtocolCard, train: ImageDataset, rt: Runtime, base_row: Row, emit: Emit) -> None:
        from ddbench.transfer import pretrain_encoder, probe_accuracies, task_name

        downstream = {name: rt.datasets[name] for name in card.probe.downstream if name in rt.datasets}
        dset = job.sets[0]
        check_fits(dset, card, train)
        for seed in job.seeds:
            _reset_peak(rt.device)
            start = time.perf_counter()
            encoder = pretrain_encoder(job.arch, dset, card.pretrain, seed, rt.device, progress=rt.progress)
            rows = []
            for name, data in downstream.items():
                for fraction, acc in probe_accuracies(encoder, data, card.probe, seed, rt.device).items():
                    rows.append((task_name(name, fraction), name, fraction, acc))
            seconds = time.perf_counter() - start
            emit([make_row(
                base_row, dset, rt.device, arch=job.arch, seed=seed, task=task, downstream=name, label_fraction=fraction,
                accuracy=round(100.0 * acc, 4), n_test=len(downstream[name].y_test), label_mode=dset.label_mode,
                lr=dset.learned_lr, learned_lr_used=bool(dset.learned_lr), batch_mode="loop", wall_time_s=round(seconds, 3),
            ) for task, name, fraction, acc in rows])
            log.info(f"  {card.id} {dset.method} {job.arch} seed {seed}: " +
                     ", ".join(f"{t} {100 * a:.1f}%" for t, _, _, a in rows))
