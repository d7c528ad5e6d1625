"""Build any registered architecture for a dataset's input shape, adapting timm models to small images."""
from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass

import timm
from torch import nn

from ddbench.core.errors import DDBenchError
from ddbench.models.classic import CLASSIC
from ddbench.models.convnet import VARIANTS
from ddbench.models.crossarch import CROSS_ARCH


@dataclass(frozen=True)
class TestedArch:
    adaptation: str
    min_px: int  # smallest input side it was shown to build and train at
    max_px: int = 64  # largest side tested (64 for all but the fixed-size classics)


_RESNET_STEM = "stem: 3×3 stride-1 conv, no max-pool (inputs ≤ 64 px)"
_VIT = "img_size from the data, patch = img_size // 8 (an 8×8 token grid)"
# Architectures that tests/test_models.py builds and trains one step at 8, 28, 32 and 64 px
# (from min_px up). `ddbench list archs` prints this table.
TESTED_ARCHS: dict[str, TestedArch] = {
    **{name: TestedArch("ConvNet family (DC/MTT); 1-channel 28 px padded to 32", 8 if kw.get("depth", 3) <= 3 else 28)
       for name, kw in VARIANTS.items()},
    "resnet18_dc": TestedArch("DC/MTT ResNet-18 (instance norm, 3×3 stem, 4×4 average pool; ≥ 16 px)", 16),
    "vgg11_dc": TestedArch("DC/MTT VGG-11 (instance norm; five 2×2 max-pools need ≥ 32 px)", 32),
    "alexnet_dc": TestedArch("DC/MTT AlexNet (no norm; 1-channel input padded by 4)", 8),
    "resnet18": TestedArch(_RESNET_STEM, 8),
    "resnet34": TestedArch(_RESNET_STEM, 8),
    "resnet50": TestedArch(_RESNET_STEM, 8),
    "vit_tiny_patch16_224": TestedArch(_VIT, 8),
    "vit_small_patch16_224": TestedArch(_VIT, 8),
    "vgg11": TestedArch("unchanged (five 2×2 max-pools need ≥ 32 px)", 32),
    "lenet": TestedArch("DD's LeNet; 28 or 32 px only", 28, 32),
    "alexcifarnet": TestedArch("DD's AlexCifarNet; 32 px RGB only", 32, 32),
    "mobilenetv3_small_100": TestedArch("unchanged", 8),
    "efficientnet_b0": TestedArch("unchanged", 8),
}
SMALL_INPUT = 64


def is_builtin(arch: str) -> bool:
    """ddbench's own networks: built with in_chans and img_size, no timm adaptation."""
    return arch in VARIANTS or arch in CLASSIC or arch in CROSS_ARCH


TIMM_PREFIX = "timm:"  # --arch 'timm:vit_*' matches timm's whole registry instead of the tested architectures


def _img_size_twins(names: list[str]) -> list[str]:
    """Drop names that build the same network once the image size is adapted: ViT-style models whose
    names differ only in a trailing resolution (`vit_tiny_patch16_224` / `_384`) keep the first."""
    kept, seen = [], set()
    for name in names:
        base = re.sub(r"_\d{3}$", "", name) if _is_vit(name) else name
        if base not in seen:
            seen.add(base)
            kept.append(name)
    return kept


def expand_archs(spec: str | list[str]) -> list[str]:
    """'convnet*,resnet18' -> the matching names, in order, without duplicates.

    Wildcards match the tested architectures (`ddbench list archs`); prefix `timm:` to match all of
    timm's registry. Either way, names that build the same network at the data's size collapse to one."""
    parts = spec if isinstance(spec, list) else [spec]
    names: list[str] = []
    for part in parts:
        for item in (p.strip() for p in part.split(",")):
            if not item:
                continue
            whole_timm = item.startswith(TIMM_PREFIX)
            item = item[len(TIMM_PREFIX):] if whole_timm else item
            if any(ch in item for ch in "*?["):
                pool = timm.list_models() if whole_timm else list(TESTED_ARCHS)
                matches = _img_size_twins([n for n in pool if fnmatch.fnmatch(n, item)])
                if not matches:
                    hint = "" if whole_timm else f" among the tested architectures (use '{TIMM_PREFIX}{item}' for all of timm)"
                    raise DDBenchError(f"--arch '{item}' matches no architecture{hint}; see `ddbench list archs`")
                names += matches
            elif timm.is_model(item):
                names.append(item)
            else:
                close = fnmatch.filter(timm.list_models(), f"*{item}*")[:5] or difflib.get_close_matches(
                    item.lower(), [*TESTED_ARCHS, *timm.list_models()], n=3, cutoff=0.75)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise DDBenchError(f"unknown architecture '{item}'{hint}; see `ddbench list archs`")
    return _img_size_twins(list(dict.fromkeys(names)))


def _is_vit(arch: str) -> bool:
    return any(key in arch for key in ("vit", "deit", "swin", "eva"))


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
    if _is_vit(arch):
        kwargs.update(_vit_kwargs(arch, size))
    try:
        model = timm.create_model(arch, pretrained=False, **kwargs)
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise DDBenchError(f"architecture '{arch}' cannot be built for {in_chans}×{size}×{size} inputs ({exc})") from None
    if size <= SMALL_INPUT and arch.startswith(("resnet", "resnext", "seresnet", "wide_resnet", "resnetv2")):
        _small_resnet_stem(model, in_chans)
    return model
