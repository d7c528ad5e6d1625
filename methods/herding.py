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

from ddbench.data import ImageDataset
from ddbench.distill.coreset import herding, select_per_class
from ddbench.distill.method import Artefact, DistillContext, Method
from ddbench.distill.registry import register_method
from ddbench.distill.selection import class_embeddings, selection_artefacts
from ddbench.engine.realtrain import SELECTION_OPTIONS
from ddbench.store.distilled import DistilledSet


@register_method
class Herding(Method):
    """Herding per class on trained-ConvNet features."""

    name = "herding"
    paper = "https://dl.acm.org/doi/10.1145/1553374.1553517"
    code = "https://github.com/PatrickZH/DeepCore"
    default_cfg = dict(SELECTION_OPTIONS)

    def artefacts(self, train: ImageDataset, ctx: DistillContext) -> list[Artefact]:
        return selection_artefacts(train, ctx)

    def distill(self, train: ImageDataset, ipc: int, ctx: DistillContext) -> DistilledSet:
        features, labels = class_embeddings(train, ctx)
        picks = select_per_class(labels, train.num_classes, lambda pool: herding(features[pool], ipc))
        return ctx.subset_set(train, picks)
