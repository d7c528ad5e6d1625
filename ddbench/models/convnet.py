"""The field's ConvNet (DC/DSA/DM/MTT): depth × [conv3×3 → norm → act → pool] → linear.

Defaults follow the original code: width 128, depth 3, instance norm (GroupNorm(C, C)), ReLU,
2×2 average pooling. A 1-channel 28 px input gets padding 3 in the first conv so the feature
maps run 32→16→8→4 as for 32 px images. Every variant is registered into timm's registry, so
`timm.create_model("convnetd4", num_classes=200, img_size=64)` works.
"""
from __future__ import annotations

import sys
from typing import Any

import torch
from timm.models import register_model
from torch import nn

NORMS = ("instancenorm", "batchnorm", "layernorm", "groupnorm", "none")
ACTS = ("relu", "sigmoid", "leakyrelu")
POOLS = ("avgpooling", "maxpooling", "none")


def _norm(kind: str, channels: int, height: int, width: int) -> nn.Module:
    if kind == "instancenorm":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels, affine=True)
    if kind == "layernorm":
        return nn.LayerNorm([channels, height, width], elementwise_affine=True)
    if kind == "groupnorm":
        return nn.GroupNorm(4, channels, affine=True)
    return nn.Identity()


def _act(kind: str) -> nn.Module:
    return {"relu": nn.ReLU(inplace=True), "sigmoid": nn.Sigmoid(), "leakyrelu": nn.LeakyReLU(0.01)}[kind]


class ConvNet(nn.Module):
    """ConvNet-`depth`-`width` with the given norm, activation and pooling."""

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int | tuple[int, int] = 32,
        width: int = 128,
        depth: int = 3,
        act: str = "relu",
        norm: str = "instancenorm",
        pooling: str = "avgpooling",
    ) -> None:
        super().__init__()
        if norm not in NORMS or act not in ACTS or pooling not in POOLS:
            raise ValueError(f"ConvNet: norm in {NORMS}, act in {ACTS}, pooling in {POOLS}")
        height, width_px = (img_size, img_size) if isinstance(img_size, int) else (int(img_size[0]), int(img_size[1]))
        mnist_pad = in_chans == 1 and (height, width_px) == (28, 28)
        if mnist_pad:
            height = width_px = 32  # padding 3 in the first conv turns 28 into 32
        self.num_classes, self.in_chans, self.width, self.depth = num_classes, in_chans, width, depth
        layers: list[nn.Module] = []
        channels = in_chans
        for d in range(depth):
            pad = 3 if mnist_pad and d == 0 else 1
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=pad), _norm(norm, width, height, width_px), _act(act)]
            channels = width
            if pooling != "none":
                layers.append(nn.AvgPool2d(2, 2) if pooling == "avgpooling" else nn.MaxPool2d(2, 2))
                height, width_px = height // 2, width_px // 2
        if height < 1 or width_px < 1:
            raise ValueError(f"ConvNet depth {depth} pools {img_size} px images down to nothing")
        self.features = nn.Sequential(*layers)
        self.num_features = width * height * width_px
        self.classifier = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The flattened penultimate-layer embedding (what herding and k-center use)."""
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.classifier


# name -> overrides of the default (width 128, depth 3, relu, instancenorm, avgpooling); names follow DC's.
VARIANTS: dict[str, dict[str, Any]] = {
    "convnet": {},
    **{f"convnetd{d}": {"depth": d} for d in (1, 2, 3, 4, 5)},
    **{f"convnetw{w}": {"width": w} for w in (32, 64, 128, 256, 512)},
    "convnetas": {"act": "sigmoid"}, "convnetar": {"act": "relu"}, "convnetal": {"act": "leakyrelu"},
    "convnetnn": {"norm": "none"}, "convnetbn": {"norm": "batchnorm"}, "convnetln": {"norm": "layernorm"},
    "convnetin": {"norm": "instancenorm"}, "convnetgn": {"norm": "groupnorm"},
    "convnetnp": {"pooling": "none"}, "convnetmp": {"pooling": "maxpooling"}, "convnetap": {"pooling": "avgpooling"},
    "convnetd4bn": {"depth": 4, "norm": "batchnorm"},
}


def _entrypoint(name: str, overrides: dict[str, Any]):
    def build(pretrained: bool = False, **kwargs: Any) -> ConvNet:
        if pretrained:
            raise ValueError(f"{name} has no pretrained weights")
        for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
            kwargs.pop(key, None)
        return ConvNet(**{**overrides, **kwargs})

    build.__name__ = name
    build.__qualname__ = name
    build.__module__ = __name__
    build.__doc__ = f"ConvNet variant {name}: {overrides or 'defaults'}."
    return build


_module = sys.modules[__name__]
for _name, _overrides in VARIANTS.items():
    setattr(_module, _name, register_model(_entrypoint(_name, _overrides)))
