"""K-center greedy (Sener & Savarese 2018) per class, on the same embedding as herding.

Embedding: penultimate-layer features of the card's ConvNet trained on the full real training
set (see methods/herding.py; the trained network is shared through the cache). As in DeepCore,
the first centre is a random point of the class (seeded) and each next centre is the point
farthest from the chosen ones (Euclidean).
"""
from __future__ import annotations

from ddbench.data import ImageDataset
from ddbench.distill.coreset import k_center_greedy, select_per_class
from ddbench.distill.method import Artefact, DistillContext, Method
from ddbench.distill.registry import register_method
from ddbench.distill.selection import class_embeddings, selection_artefacts
from ddbench.engine.realtrain import SELECTION_OPTIONS
from ddbench.store.distilled import DistilledSet


@register_method
class KCenter(Method):
    """K-center greedy per class on trained-ConvNet features."""

    name = "kcenter"
    paper = "https://arxiv.org/abs/1708.00489"
    code = "https://github.com/PatrickZH/DeepCore"
    default_cfg = dict(SELECTION_OPTIONS)

    def artefacts(self, train: ImageDataset, ctx: DistillContext) -> list[Artefact]:
        return selection_artefacts(train, ctx)

    def distill(self, train: ImageDataset, ipc: int, ctx: DistillContext) -> DistilledSet:
        features, labels = class_embeddings(train, ctx)
        gen = ctx.generator()
        picks = select_per_class(labels, train.num_classes, lambda pool: k_center_greedy(features[pool], ipc, gen))
        return ctx.subset_set(train, picks)
