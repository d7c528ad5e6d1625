"""Evaluation networks: the ConvNet family (registered into timm) and any timm model, adapted to small inputs.

    create_network("convnet", num_classes=10, in_chans=3, img_size=32)
    create_network("resnet18", num_classes=10, in_chans=3, img_size=32)   # 3×3 stride-1 stem, no max-pool
    expand_archs("convnet*,resnet18")                                    # comma lists and wildcards
"""
from ddbench.models import classic, convnet, crossarch  # noqa: F401  (register ConvNets, DD's and DC's networks into timm)
from ddbench.models.factory import TESTED_ARCHS, create_network, expand_archs

__all__ = ["create_network", "expand_archs", "TESTED_ARCHS"]
