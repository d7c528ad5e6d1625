"""Herding (Welling 2009) per class, on the embedding the DC paper and DeepCore use.

Embedding: the penultimate-layer features (the input of the final linear layer) of the card's
evaluation architecture (ConvNet) trained on the full real training set with DeepCore's
selection defaults: SGD lr 0.1, Nesterov momentum 0.9, weight decay 5e-4, batch 256, 40 epochs
(cosine annealing is ours), no augmentation. The network is trained once per (dataset, arch,
seed) and cached.

Deviation: DeepCore's herding takes the argmax of the distance to the target mean, which selects
the point that moves the running mean *away* from the class mean; we take the argmin, as in
Welling's algorithm and in the DC paper's description.
"""
from __future__ import annotations

import torch

from ddbench.coreset import herding, select_per_class
from ddbench.data import ImageDataset
from ddbench.distilled import DistilledSet
from ddbench.method import DistillContext, Method
from ddbench.realtrain import SELECTION_OPTIONS, cached_real_network, embed, selection_setup
from ddbench.registry import register_method


def class_embeddings(train: ImageDataset, ctx: DistillContext) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of every training image from the cached real-data network, and the training labels."""
    arch, recipe = selection_setup(ctx.config, ctx.card.archs[0])
    model = cached_real_network(arch, train, ctx.space, recipe, ctx.seed, ctx.device, ctx.cache_dir,
                                progress=ctx.progress, log=ctx.log)
    features = embed(model, ctx.space.from_uint8(train.x_train, ctx.device))
    return features, train.y_train.to(ctx.device)


@register_method
class Herding(Method):
    """Herding per class on trained-ConvNet features."""

    name = "herding"
    default_cfg = dict(SELECTION_OPTIONS)

    def distill(self, train: ImageDataset, ipc: int, ctx: DistillContext) -> DistilledSet:
        features, labels = class_embeddings(train, ctx)
        picks = select_per_class(labels, train.num_classes, lambda pool: herding(features[pool], ipc))
        return ctx.subset_set(train, picks)
