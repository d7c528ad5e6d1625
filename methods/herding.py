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

from ddbench.coreset import herding
from ddbench.data import ImageDataset
from ddbench.distilled import DistilledSet
from ddbench.method import DistillContext, Method
from ddbench.realtrain import RealTrainRecipe, cached_real_network, embed
from ddbench.registry import register_method

EMBED_DEFAULTS = {"embed_arch": "", "embed_epochs": 40, "embed_lr": 0.1, "embed_batch": 256}


def class_embeddings(train: ImageDataset, ctx: DistillContext) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of every training image from the cached real-data network, and the training labels."""
    cfg = ctx.config
    arch = cfg["embed_arch"] or ctx.card.archs[0]
    recipe = RealTrainRecipe(epochs=cfg["embed_epochs"], lr=cfg["embed_lr"], batch_size=cfg["embed_batch"])
    model = cached_real_network(arch, train, ctx.space, recipe, ctx.seed, ctx.device, ctx.cache_dir,
                                progress=ctx.progress, log=ctx.log)
    features = embed(model, ctx.space.from_uint8(train.x_train, ctx.device))
    return features, train.y_train.to(ctx.device)


@register_method
class Herding(Method):
    """Herding per class on trained-ConvNet features."""

    name = "herding"
    default_cfg = dict(EMBED_DEFAULTS)

    def distill(self, train: ImageDataset, ipc: int, ctx: DistillContext) -> DistilledSet:
        features, labels = class_embeddings(train, ctx)
        picks = []
        for c in range(train.num_classes):
            pool = torch.nonzero(labels == c).flatten()
            picks.append(pool[herding(features[pool], ipc).to(pool.device)].cpu())
        return ctx.subset_set(train, torch.cat(picks))
