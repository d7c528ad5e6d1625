"""`supervised`: fresh networks trained on the set with the card's recipe, tested on the real test split."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from ddbench.cards.card import ProtocolCard
from ddbench.core import clock
from ddbench.core.errors import DDBenchError
from ddbench.core.provenance import reset_peak_memory
from ddbench.data import ImageDataset
from ddbench.data.space import ZCA, ImageSpace
from ddbench.engine.augment import DSA
from ddbench.engine.train import accuracy, choose_mode, train_networks
from ddbench.kinds.base import (
    Emit,
    EvalJob,
    ProtocolKind,
    Runtime,
    _check_class_budget,
    _check_per_class,
    check_fits,
    make_row,
    register_kind,
)
from ddbench.store.distilled import DistilledSet
from ddbench.store.rows import Row

log = logging.getLogger(__name__)


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
    """Per-network wall time: each network's own time in a loop, the group's time shared under vmap. On a GPU the clock
    waits for the queued work first (torch.cuda.synchronize), so a time is the work's, not the time to queue it."""

    def __init__(self, mode: str, count: int, device: torch.device | None = None) -> None:
        self.mode, self.count, self.device = mode, count, device
        self.last = self._now()
        self.shared: float | None = None

    def _now(self) -> float:
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return clock.now()

    def lap(self) -> float:
        now = self._now()
        if self.mode == "vmap":
            if self.shared is None:
                self.shared = (now - self.last) / self.count
            return self.shared
        seconds, self.last = now - self.last, now
        return seconds

    def restart(self) -> None:
        if self.mode != "vmap":
            self.last = self._now()


@dataclass
class Trained:
    """One network just trained under a card: what a kind's `measure` may look at."""

    arch: str
    seed: int
    dset: DistilledSet
    space: ImageSpace  # the space its inputs live in (the set's, with its ZCA)
    x_test: torch.Tensor  # the test split in that space, on the device
    y_test: torch.Tensor


@register_kind
class Supervised(ProtocolKind):
    """Fresh networks trained on the set with the card's recipe, tested on the real test split. Kinds that train the
    same networks and measure more (adversarial, privacy) subclass it and extend `measure`."""

    name = "supervised"

    def measure(self, model: torch.nn.Module, net: Trained, card: ProtocolCard, train: ImageDataset,
                rt: Runtime) -> dict[str, Any]:
        """The row fields of one trained network: here its test accuracy (%)."""
        return {"accuracy": round(100.0 * accuracy(model, net.x_test, net.y_test), 4)}

    def check_set(self, dset: DistilledSet, card: ProtocolCard, train: ImageDataset) -> None:
        _check_class_budget(dset, card, train)
        self.check_labels(dset, card, train)

    def check_labels(self, dset: DistilledSet, card: ProtocolCard, train: ImageDataset) -> None:
        _check_per_class(dset, card)
        if not len(dset.images):
            raise DDBenchError(f"the set holds no images; card '{card.id}' trains on at least one image per class")
        if dset.label_mode == "hard":
            missing = sorted(set(range(train.num_classes)) - set(dset.labels.tolist()))
            if missing:
                raise DDBenchError(f"the set has no image of class(es) {', '.join(map(str, missing[:10]))}"
                                   f"{' ...' if len(missing) > 10 else ''}; card '{card.id}' needs at least one per class")
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
            reset_peak_memory(device)
            mode = choose_mode(rt.mode, job.arch, seeds, x, y, first.label_mode, card.train, first.lr,
                               train.num_classes, augment, per_seed_data=per_seed)
            clock = _Clock(mode, len(seeds), device)

            def save_row(k: int, model: torch.nn.Module, seeds=seeds, sets=sets, x_test=x_test, clock=clock, mode=mode) -> None:
                seconds = clock.lap()
                p = sets[k] if per_seed else sets[0]
                measured = self.measure(model, Trained(job.arch, seeds[k], p.dset, p.space, x_test, y_test), card, train, rt)
                emit([make_row(
                    base_row, p.dset, device, arch=job.arch, seed=seeds[k], **measured,
                    n_test=len(y_test), label_mode=p.label_mode, lr=p.lr, learned_lr_used=p.lr != card.train.lr,
                    batch_mode=f"vmap{len(seeds)}" if mode == "vmap" else "loop", wall_time_s=round(seconds, 3),
                )])
                log.info(f"  {card.id} {job.arch} seed {seeds[k]}: {measured['accuracy']:.2f}%")
                clock.restart()

            train_networks(job.arch, seeds, x, y, first.label_mode, card.train, first.lr, train.num_classes, augment,
                           mode=mode, progress=rt.progress, per_seed_data=per_seed, on_trained=save_row,
                           desc=f"{card.id} {job.arch} seed{'s' if len(seeds) > 1 else ''} {','.join(map(str, seeds))}")
