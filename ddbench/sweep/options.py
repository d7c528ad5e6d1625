"""What one evaluation request runs with (EvalOptions) and where its distilled sets are cached.

`distill_cached` distils a set once and reuses it from the set cache: the job graph's distill tasks
and ddbench robustness call it; `set_cache_path` keys a set by everything that decides it.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ddbench.cards.card import ProtocolCard
from ddbench.core import clock
from ddbench.core.errors import DDBenchError
from ddbench.core.paths import user_cache_root
from ddbench.core.provenance import device_name, peak_memory_mb, reset_peak_memory
from ddbench.data import ImageDataset
from ddbench.data.space import ImageSpace
from ddbench.distill.method import DistillContext, Method
from ddbench.engine.precision import precision_scope
from ddbench.engine.resume import ResumeFile
from ddbench.kinds import get_kind
from ddbench.store.distilled import DistilledSet
from ddbench.store.results import ResultStore

log = logging.getLogger(__name__)


@dataclass
class EvalOptions:
    device: torch.device
    store: ResultStore | None  # None: distil only (the driver's store is the only one written)
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


def config_hash(method: str, config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([method, config], sort_keys=True, default=str).encode()).hexdigest()[:12]


def check_class_sizes(card: ProtocolCard, train: ImageDataset) -> None:
    """A class with fewer training images than the IPC would silently give a smaller set."""
    if not get_kind(card.kind).per_class_ipc:
        return
    counts = train.class_counts()
    smallest = int(counts.argmin())
    if int(counts[smallest]) < card.ipc:
        raise DDBenchError(f"class {train.class_names[smallest]!r} of {train.name} ({train.source}) has {int(counts[smallest])} "
                           f"training images; card '{card.id}' needs ipc {card.ipc} per class")


def distill_cached(method: Method, card: ProtocolCard, train: ImageDataset, seed: int, opts: EvalOptions) -> DistilledSet:
    """Distil with `seed`, reusing a set cached from an earlier (possibly interrupted) run.

    The set records its distillation wall time in `extra["distill_time_s"]`."""
    check_class_sizes(card, train)
    config = method.config_for(card)
    space = card_space(card, train)
    path = set_cache_path(method, card, train, seed, opts)
    if path.is_file() and all(snapshot_path(path, step).is_file() for step in opts.snapshots):
        try:
            return DistilledSet.load(path)
        except DDBenchError:
            path.unlink(missing_ok=True)
    resume = ResumeFile(resume_path(path))
    saved = resume.epochs_saved()
    if any(0 < step <= saved and not snapshot_path(path, step).is_file() for step in opts.snapshots):
        log.info(f"{path.name}: a snapshot asked for lies before the interrupted run's saved state; distilling afresh")
        resume.path.unlink(missing_ok=True)
    ctx = DistillContext(card=card, device=opts.device, seed=seed, config=config, space=space,
                         method_name=method.name, cache_dir=opts.cache_dir, progress=opts.progress,
                         snapshots=tuple(opts.snapshots), snapshot_path=lambda step: snapshot_path(path, step),
                         resume=resume)
    reset_peak_memory(opts.device)
    start = clock.now()
    with precision_scope(card.precision, opts.device):
        dset = method.distill(train, card.ipc, ctx)
    seconds = round(clock.now() - start + ctx.resume.seconds_before, 3)  # an interrupted run's time included
    dset.extra.setdefault("distill_time_s", seconds)
    if ctx.resume.restored:
        dset.extra["resumed_after"] = ctx.resume.restored
    dset.extra.setdefault("cost", distill_cost(method, train, ctx, opts.device, seconds))
    dset.save(path)
    ctx.resume.finish()
    return dset


def distill_cost(method: Method, train: ImageDataset, ctx: DistillContext, device: torch.device, seconds: float) -> dict[str, Any]:
    """What making a set cost: the distillation's own wall seconds, device and peak memory, and the seconds its
    artefacts (experts, teacher, selection network: other tasks, often shared) recorded where they did."""
    peak, kind = peak_memory_mb(device)
    artefacts: dict[str, dict[str, Any]] = {}
    try:
        for a in method.artefacts(train, ctx):
            stage = artefacts.setdefault(a.stage, {"tasks": 0, "recorded": 0, "seconds": 0.0})
            stage["tasks"] += 1
            if a.seconds is not None:
                stage["recorded"] += 1
                stage["seconds"] = round(stage["seconds"] + float(a.seconds), 3)
    except Exception:  # a cost summary never breaks a distillation that succeeded
        artefacts = {}
    return {"device": device_name(device), "device_kind": device.type, "distill_s": seconds,
            "peak_mem_mb": round(peak, 1), "peak_mem_kind": kind, "artefacts": artefacts}


def set_cache_path(method: Method, card: ProtocolCard, train: ImageDataset, seed: int, opts: EvalOptions) -> Path:
    """The cache file of the set `method` distils under `card` with `seed` (keyed by everything that decides it)."""
    space = card_space(card, train)
    key = config_hash(method.name, {"config": method.identity_config(card), "dataset": train.name, "source": train.source,
                                    "ipc": card.ipc, "budget": card.param("budget", 0), "space": [space.mean, space.std], "seed": seed})
    return opts.cache_dir / "sets" / f"{method.name}-{card.dataset}-ipc{card.ipc}-seed{seed}-{key}.safetensors"


def resume_path(final: Path) -> Path:
    """Where the distillation that ends in `final` keeps the state an interrupted run resumes from."""
    return final.with_name(f"{final.stem}.resume.pt")


def snapshot_path(final: Path, step: int) -> Path:
    """Where the snapshot after `step` outer steps of the run that ends in `final` lives."""
    return final.with_name(f"{final.stem}-step{step}{final.suffix}")
