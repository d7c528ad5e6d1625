"""Random real images per class: the baseline every distillation method must beat.

Draws `ipc` training images per class uniformly without replacement, seeded. Each evaluation
seed gets its own subset (one_set_per_seed), as the field's random-baseline numbers average over
subsets as well as networks.
"""
from __future__ import annotations

import torch

from ddbench.data import ImageDataset
from ddbench.distill.method import DistillContext, Method
from ddbench.distill.registry import register_method
from ddbench.store.distilled import DistilledSet


@register_method
class Random(Method):
    """Random real images per class (seeded)."""

    name = "random"
    one_set_per_seed = True

    def distill(self, train: ImageDataset, ipc: int, ctx: DistillContext) -> DistilledSet:
        gen = ctx.generator()
        picks = []
        for c in range(train.num_classes):
            pool = train.indices_of_class(c)
            picks.append(pool[torch.randperm(len(pool), generator=gen)[:ipc]])
        return ctx.subset_set(train, torch.cat(picks))
