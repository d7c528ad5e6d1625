"""The networks of the original Dataset Distillation code (Wang et al. 2018, SsnL/dataset-distillation):
LeNet for MNIST and AlexCifarNet for CIFAR-10, registered into timm's registry like the ConvNets.

`ddbench.models.init.xavier_init` is that code's initialisation (Xavier-normal weights with gain 1, zero biases),
which its random-init networks are drawn from.
"""
from __future__ import annotations

import sys
from typing import Any

import torch
import torch.nn.functional as F
from timm.models import register_model
from torch import nn


class LeNet(nn.Module):
    """conv5(6) → pool → conv5(16) → pool → fc120 → fc84 → fc; ReLU; 28 px input padded by 2."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1, img_size: int | tuple[int, int] = 28) -> None:
        super().__init__()
        size = img_size if isinstance(img_size, int) else int(img_size[0])
        if size not in (28, 32):
            raise ValueError(f"LeNet takes 28 or 32 px inputs, not {size}")
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_chans, 6, 5, padding=2 if size == 28 else 0)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc2(F.relu(self.fc1(x.flatten(1)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.forward_features(x))


class AlexCifarNet(nn.Module):
    """Two conv5(64) blocks with max-pool and local response norm, then fc 384 → 192 → classes (32 px RGB)."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, img_size: int | tuple[int, int] = 32) -> None:
        super().__init__()
        size = img_size if isinstance(img_size, int) else int(img_size[0])
        if size != 32:
            raise ValueError(f"AlexCifarNet takes 32 px inputs, not {size}")
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 64, kernel_size=5, stride=1, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1), nn.LocalResponseNorm(4, alpha=0.001 / 9.0, beta=0.75, k=1),
            nn.Conv2d(64, 64, kernel_size=5, stride=1, padding=2), nn.ReLU(),
            nn.LocalResponseNorm(4, alpha=0.001 / 9.0, beta=0.75, k=1), nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        self.classifier = nn.Sequential(nn.Linear(4096, 384), nn.ReLU(), nn.Linear(384, 192), nn.ReLU(),
                                        nn.Linear(192, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[:-1](self.features(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[-1](self.forward_features(x))


CLASSIC = {"lenet": LeNet, "alexcifarnet": AlexCifarNet}


def timm_entrypoint(name: str, cls: type):
    """A timm model entrypoint that builds `cls(**kwargs)` (no pretrained weights; timm's extra keys dropped)."""
    def build(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        if pretrained:
            raise ValueError(f"{name} has no pretrained weights")
        for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
            kwargs.pop(key, None)
        return cls(**kwargs)

    build.__name__ = build.__qualname__ = name
    build.__module__ = __name__
    build.__doc__ = cls.__doc__
    return build


for _name, _cls in CLASSIC.items():
    setattr(sys.modules[__name__], _name, register_model(timm_entrypoint(_name, _cls)))
