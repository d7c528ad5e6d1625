"""Forgetting (Toneva et al. 2019): per class, the training images forgotten most often.

A forgetting event is a training example that was classified correctly at its previous
presentation and is misclassified now (measured on the training batch, in train mode, as in
DeepCore and the authors' code). Events are counted while the card's ConvNet trains on the full
real training set with DeepCore's selection defaults (SGD lr 0.1, Nesterov momentum 0.9, weight
decay 5e-4, batch 256, 40 epochs, cosine annealing ours, no augmentation). Per class the `ipc`
images with the most events are kept; ties (many images are never forgotten) are broken by a
seeded random order, where DeepCore's argsort breaks them by index.
"""
from __future__ import annotations

import torch

from ddbench.data import ImageDataset
from ddbench.distill.method import DistillContext, Method
from ddbench.distill.registry import register_method
from ddbench.engine.realtrain import SELECTION_OPTIONS, RealTrainRecipe, selection_setup, train_on_real
from ddbench.store.distilled import DistilledSet


def forgetting_events(train: ImageDataset, ctx: DistillContext, arch: str, recipe: RealTrainRecipe) -> torch.Tensor:
    events = torch.zeros(len(train.y_train), device=ctx.device)
    last_correct = torch.zeros(len(train.y_train), dtype=torch.bool, device=ctx.device)

    def count(idx: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        correct = logits.argmax(1) == labels
        events[idx] += (last_correct[idx] & ~correct).float()
        last_correct[idx] = correct

    train_on_real(arch, train, ctx.space, recipe, ctx.seed, ctx.device, on_batch=count, progress=ctx.progress,
                  desc=f"counting forgetting events on {train.name}")
    return events.cpu()


@register_method
class Forgetting(Method):
    """The most-forgotten real images per class (Toneva et al.)."""

    name = "forgetting"
    paper = "https://arxiv.org/abs/1812.05159"
    code = "https://github.com/PatrickZH/DeepCore"
    default_cfg = dict(SELECTION_OPTIONS)

    def distill(self, train: ImageDataset, ipc: int, ctx: DistillContext) -> DistilledSet:
        arch, recipe = selection_setup(ctx.config, ctx.card.archs[0])
        events = forgetting_events(train, ctx, arch, recipe)
        gen = ctx.generator()
        picks = []
        for c in range(train.num_classes):
            pool = train.indices_of_class(c)
            shuffled = pool[torch.randperm(len(pool), generator=gen)]
            order = torch.argsort(events[shuffled], descending=True, stable=True)
            picks.append(shuffled[order[:ipc]])
        return ctx.subset_set(train, torch.cat(picks))
