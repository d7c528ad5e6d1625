"""Evaluation networks: the ConvNet family (registered into timm) and any timm model, adapted to small inputs.

    create_network("convnet", num_classes=10, in_chans=3, img_size=32)
    create_network("resnet18", num_classes=10, in_chans=3, img_size=32)   # 3×3 stride-1 stem, no max-pool
    expand_archs("convnet*,resnet18")                                    # comma lists and wildcards
    is_arch("resnet18")                                                  # from the light index, no timm import

Importing this package does not import timm (about 1.5 s with torchvision): the model zoo (ddbench.models.factory,
which registers ddbench's networks into timm) loads on the first network built or wildcard expanded, so that code
that only checks names (cards, flags) stays light.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ddbench.models.index import arch_names, expand_archs, is_arch

if TYPE_CHECKING:
    from torch import nn

__all__ = ["create_network", "expand_archs", "is_arch", "arch_names", "TESTED_ARCHS"]


def create_network(arch: str, num_classes: int, in_chans: int, img_size: int | tuple[int, int]) -> nn.Module:
    """A freshly initialised network for (in_chans, img_size) inputs and `num_classes` outputs."""
    from ddbench.models import factory

    return factory.create_network(arch, num_classes, in_chans, img_size)


def __getattr__(name: str) -> Any:
    if name == "TESTED_ARCHS":
        from ddbench.models.tested import TESTED_ARCHS

        return TESTED_ARCHS
    raise AttributeError(f"module 'ddbench.models' has no attribute {name!r}")
