"""The baselines of the self-supervised transfer protocol (printed beside MKDT on every ssl card).

- `no-pretrain`: no pre-training at all: a randomly initialised encoder is probed (an empty set).
- `kd-random`: a class-balanced random real subset of the card's budget (as the authors' random
  baseline), pre-trained by regressing its teacher representations (KD).
- `kd-highloss`: MKDT's high-loss initialisation, without distillation, pre-trained the same way.
- `bt-random`: the same class-balanced random subset pre-trained with Barlow Twins on its images alone.
Teacher, experts and subsets use MKDT's per-card settings (and share its caches).
"""
from __future__ import annotations

import torch

from ddbench.data import ImageDataset
from ddbench.distill.kd import DIGITS_BUDGET, KD_OPTIONS, SSL_QUICK, high_loss_indices, kd_artefacts, kd_experts, teacher_targets
from ddbench.distill.method import Artefact, DistillContext, Method
from ddbench.distill.registry import register_method
from ddbench.store.distilled import DistilledSet

_TINY = {"tinyimagenet-ssl-*": {"arch": "convnetd4"}, "digits*": DIGITS_BUDGET}


def _random_subset(train: ImageDataset, ctx: DistillContext) -> torch.Tensor:
    """A class-balanced random subset of the budget, as the authors' random baseline: budget // K images
    of every class, and the remainder one each from randomly chosen classes."""
    gen = ctx.generator()
    k = train.num_classes
    per_class, extra = divmod(ctx.card.params.budget, k)
    bonus = set(torch.randperm(k, generator=gen)[:extra].tolist())
    picks = []
    for c in range(k):
        pool = train.indices_of_class(c)
        take = per_class + (c in bonus)
        picks.append(pool[torch.randperm(len(pool), generator=gen)[:take]])
    return torch.cat(picks)


def _kd_set(train: ImageDataset, ctx: DistillContext, idx: torch.Tensor, reps: torch.Tensor) -> DistilledSet:
    """Real images `idx` with their teacher representations as regression targets."""
    return ctx.make_set(ctx.space.from_uint8(train.x_train[idx]), reps[idx].clone(), train, label_mode="regression",
                        indices=idx.tolist())


class _SSLBaseline(Method):
    kinds = ("ssl-transfer",)
    quick_card = SSL_QUICK
    one_set_per_seed = False


class _KDBaseline(_SSLBaseline):
    """A real subset with teacher targets: MKDT's teacher, experts and per-card settings."""

    default_cfg = dict(KD_OPTIONS)
    protocol_cfg = _TINY


@register_method
class NoPretrain(_SSLBaseline):
    """No pre-training: a randomly initialised encoder (an empty set)."""

    name = "no-pretrain"

    def distill(self, train: ImageDataset, ipc: int, ctx: DistillContext) -> DistilledSet:
        empty = torch.zeros(0, train.channels, *train.image_size)
        return ctx.make_set(empty, torch.zeros(0, 0), train, label_mode="none")


@register_method
class KDRandom(_KDBaseline):
    """A random real subset of the budget, pre-trained on its teacher representations."""

    name = "kd-random"

    def artefacts(self, train: ImageDataset, ctx: DistillContext) -> list[Artefact]:
        return kd_artefacts(train, ctx, experts=False)

    def distill(self, train: ImageDataset, ipc: int, ctx: DistillContext) -> DistilledSet:
        return _kd_set(train, ctx, _random_subset(train, ctx), teacher_targets(train, ctx).reps)


@register_method
class KDHighLoss(_KDBaseline):
    """MKDT's high-loss subset without distillation, pre-trained on its teacher representations."""

    name = "kd-highloss"

    def artefacts(self, train: ImageDataset, ctx: DistillContext) -> list[Artefact]:
        return kd_artefacts(train, ctx)

    def distill(self, train: ImageDataset, ipc: int, ctx: DistillContext) -> DistilledSet:
        setup = teacher_targets(train, ctx)
        idx = high_loss_indices(train, ctx, setup, kd_experts(train, ctx, setup), ctx.card.params.budget)
        return _kd_set(train, ctx, idx, setup.reps)


@register_method
class BTRandom(_SSLBaseline):
    """A random real subset of the budget, pre-trained with Barlow Twins on its images alone."""

    name = "bt-random"

    def distill(self, train: ImageDataset, ipc: int, ctx: DistillContext) -> DistilledSet:
        idx = _random_subset(train, ctx)
        return ctx.make_set(ctx.space.from_uint8(train.x_train[idx]), torch.zeros(len(idx), 0), train,
                            label_mode="none", indices=idx.tolist())
