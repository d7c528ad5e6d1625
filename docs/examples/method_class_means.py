"""Example method (docs/extending.md): the real image nearest to each class mean, repeated `ipc` times over the
nearest ones. One file; `@register_method` is its one line of registration."""
from __future__ import annotations

import torch

from ddbench.distill.registry import register_method


@register_method("class-means-example")
def class_means(train, ipc, ctx):
    """The `ipc` real images nearest to each class's mean image (pixel space)."""
    chosen = []
    for c in range(train.num_classes):
        idx = train.indices_of_class(c)
        x = train.x_train[idx].float().flatten(1)
        order = (x - x.mean(0)).norm(dim=1).argsort()
        chosen.append(idx[order[:ipc]])
    return ctx.subset_set(train, torch.cat(chosen))
