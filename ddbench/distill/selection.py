"""The coreset baselines' shared selection network: its job-graph task and the features it gives."""
from __future__ import annotations

import torch

from ddbench.data import ImageDataset
from ddbench.distill.artefacts import selection_artefact
from ddbench.distill.method import DistillContext
from ddbench.engine.realtrain import cached_real_network, embed, selection_setup


def selection_artefacts(train: ImageDataset, ctx: DistillContext) -> list:
    """The selection network `class_embeddings` uses, as a job-graph task."""
    arch, recipe = selection_setup(ctx.config, ctx.card.archs[0])
    return [selection_artefact(arch, train, ctx.space, recipe, ctx.seed, ctx.cache_dir)]


def class_embeddings(train: ImageDataset, ctx: DistillContext) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of every training image from the cached real-data selection network, and the training labels
    (shared by the coreset baselines, so herding and k-center embed with one network)."""
    arch, recipe = selection_setup(ctx.config, ctx.card.archs[0])
    model = cached_real_network(arch, train, ctx.space, recipe, ctx.seed, ctx.device, ctx.cache_dir,
                                progress=ctx.progress)
    features = embed(model, ctx.space.from_uint8(train.x_train, ctx.device))
    return features, train.y_train.to(ctx.device)
