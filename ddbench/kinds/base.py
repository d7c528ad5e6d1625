"""The protocol-kind interface: what a card's `kind` means, and the registry of kinds.

A kind says which sets a card accepts, which rows one (arch, seed) produces and how they are
made. The engine only asks the kind of a card; a new kind is one class (here, in its own module
of this package, or in a plug-in) registered with `@register_kind` or through the entry-point
group `ddbench.kinds`.
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch

from ddbench import __version__
from ddbench.cards.card import ProtocolCard, read_card
from ddbench.core.errors import DDBenchError
from ddbench.core.provenance import code_version, device_name, git_sha, peak_memory_mb
from ddbench.core.registry import Registry
from ddbench.data import ImageDataset
from ddbench.engine.precision import describe as describe_precision
from ddbench.store.distilled import DistilledSet
from ddbench.store.rows import ROW_SCHEMA, Row, build_row

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
    cache_dir: Path | None = None  # where a kind may keep what it trains beside the evaluated networks (None: nowhere)


Need = Callable[[bool, str], None]  # need(condition, message): refuse the card with one line unless condition holds


class ProtocolKind:
    """Base class of a protocol kind; subclasses set `name` and implement `run`.

    A kind owns its card section: `Params` is the dataclass of the keys only its cards carry (parsed and
    type-checked by the card loader, hashed with the card), `check_card` checks their values, and
    `work` sizes one evaluation for `--plan`."""

    name: ClassVar[str] = ""
    stage: ClassVar[str] = "evaluate"  # the job-graph stage of its evaluations
    Params: ClassVar[type | None] = None  # the dataclass of this kind's own card keys (None: it has none)
    per_class_ipc: ClassVar[bool] = True  # sets are sized by the card's images per class
    sets: ClassVar[str] = "supervised"  # the family of sets it evaluates; a method lists the families it makes in `kinds`

    def check_card(self, card: ProtocolCard, need: Need) -> None:
        """Refuse a card whose values this kind cannot run (one line through `need`), before any work."""
        need(1 <= card.ipc <= 100_000, f"ipc must be 1..100000, got {card.ipc}")

    def work(self, card: ProtocolCard, train: ImageDataset) -> tuple[float, float]:
        """(images trained, summed over every pass; images tested) by one evaluated network, for `--plan`."""
        return float((card.train.epochs + 1) * card.ipc * train.num_classes), float(len(train.x_test))

    def measure_seconds(self, row: Row) -> float:
        """The seconds a row's measurement took beyond the training its `wall_time_s` records, as the row records them
        (for `--plan`'s history; 0 where the measurement is a test pass)."""
        return 0.0

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


KINDS: Registry[type[ProtocolKind]] = Registry("protocol kind", entry_points="ddbench.kinds")
_INSTANCES: dict[type, ProtocolKind] = {}


def register_kind(cls: type[ProtocolKind]) -> type[ProtocolKind]:
    """Class decorator: register a ProtocolKind subclass under its `name`."""
    if not cls.name:
        raise DDBenchError("a protocol kind needs a non-empty name")
    KINDS.register(cls.name, cls)
    return cls


def get_kind(name: str) -> ProtocolKind:
    cls = KINDS.get(name)
    if cls not in _INSTANCES:
        _INSTANCES[cls] = cls()
    return _INSTANCES[cls]


def kind_names() -> tuple[str, ...]:
    return tuple(KINDS.names())


def _params_for(kind: str) -> type | None:
    return KINDS.get(kind).Params


def load_protocol(name_or_path: str) -> ProtocolCard:
    """A card by id (e.g. 'cifar10-ipc10') or by path to a .toml file: parsed, checked, and checked by its kind."""
    card = read_card(name_or_path, _params_for)
    origin = name_or_path if name_or_path.endswith(".toml") else f"{name_or_path}.toml"

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise DDBenchError(f"protocol card {origin}: {message}")

    get_kind(card.kind).check_card(card, need)
    return card


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


def make_row(base_row: Row, dset: DistilledSet, device: torch.device, **fields: Any) -> Row:
    """A result row: the run's provenance, the set's, the device's peak memory so far, and `fields` (checked by build_row)."""
    peak, peak_kind = peak_memory_mb(device)
    return build_row(**{**base_row, "method": dset.method, "method_config": dset.method_config, "set_id": dset.set_id,
                        "distill_seed": dset.distill_seed, "distill_time_s": dset.extra.get("distill_time_s"),
                        "snapshot_step": dset.extra.get("snapshot_step"), "peak_mem_mb": round(peak, 1),
                        "peak_mem_kind": peak_kind, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "set_storage": dset.storage(), "distill_cost": dset.extra.get("cost"), **fields})


def base_row(card: ProtocolCard, run_id: str, device: torch.device, train: ImageDataset) -> Row:
    """The provenance every row of one evaluation shares (made where the evaluation runs)."""
    return {
        "schema": ROW_SCHEMA, "run_id": run_id, "protocol": card.id, "protocol_version": card.version,
        "protocol_hash": card.hash, "protocol_standard": card.standard, "protocol_overrides": card.overrides,
        "precision": card.precision, "precision_detail": describe_precision(card.precision, device),
        "dataset": card.dataset, "data_fingerprint": train.fingerprint, "data_complete": train.complete,
        "ipc": card.ipc, "epochs": card.train.epochs,
        "ddbench_version": __version__, "git_sha": git_sha(), "code_version": code_version(),
        "torch_version": torch.__version__, "device": device_name(device), "host": socket.gethostname(),
    }
