"""Build any registered architecture for a dataset's input shape, adapting timm models to small images."""
from __future__ import annotations

import timm
from torch import nn

from ddbench.core.errors import DDBenchError
from ddbench.models.classic import CLASSIC
from ddbench.models.convnet import VARIANTS
from ddbench.models.crossarch import CROSS_ARCH
from ddbench.models.index import is_vit

SMALL_INPUT = 64


def is_builtin(arch: str) -> bool:
    """ddbench's own networks: built with in_chans and img_size, no timm adaptation."""
    return arch in VARIANTS or arch in CLASSIC or arch in CROSS_ARCH


def _vit_kwargs(arch: str, img_size: int) -> dict:
    """ViT-style models take img_size; patch size is chosen for an 8×8 token grid."""
    model_cls_kwargs = {"img_size": img_size}
    if "vit" in arch or "deit" in arch:
        model_cls_kwargs["patch_size"] = max(1, img_size // 8)
    return model_cls_kwargs


def _small_resnet_stem(model: nn.Module, in_chans: int) -> None:
    conv1 = getattr(model, "conv1", None)
    if isinstance(conv1, nn.Conv2d):
        model.conv1 = nn.Conv2d(in_chans, conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    if hasattr(model, "maxpool"):
        model.maxpool = nn.Identity()


def create_network(arch: str, num_classes: int, in_chans: int, img_size: int | tuple[int, int]) -> nn.Module:
    """A freshly initialised network for (in_chans, img_size) inputs and `num_classes` outputs."""
    size = img_size if isinstance(img_size, int) else int(img_size[0])
    if is_builtin(arch):
        try:
            return timm.create_model(arch, num_classes=num_classes, in_chans=in_chans, img_size=img_size)
        except ValueError as exc:
            raise DDBenchError(f"architecture '{arch}' does not fit {in_chans}×{size}×{size} inputs: {exc}") from None
    if not timm.is_model(arch):
        raise DDBenchError(f"unknown architecture '{arch}'; see `ddbench list archs`")
    kwargs: dict = {"num_classes": num_classes, "in_chans": in_chans}
    if is_vit(arch):
        kwargs.update(_vit_kwargs(arch, size))
    try:
        model = timm.create_model(arch, pretrained=False, **kwargs)
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise DDBenchError(f"architecture '{arch}' cannot be built for {in_chans}×{size}×{size} inputs ({exc})") from None
    if size <= SMALL_INPUT and arch.startswith(("resnet", "resnext", "seresnet", "wide_resnet", "resnetv2")):
        _small_resnet_stem(model, in_chans)
    return model
