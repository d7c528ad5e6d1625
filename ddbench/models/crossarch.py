"""The networks of the field's cross-architecture tables (DC/DSA/DM/MTT code, `networks.py`), registered
into timm's registry beside the ConvNet family:

- `resnet18_dc`: ResNet-18 with instance norm (GroupNorm(C, C)), a 3×3 stride-1 stem and no max-pool,
  4×4 average pool before the classifier (MTT's `ResNet18`);
- `vgg11_dc`: VGG-11 with instance norm after every conv and one linear classifier (MTT's `VGG11`);
- `alexnet_dc`: five convs (128-192-256-192-192) with ReLU and three max-pools, no norm (MTT's `AlexNet`).

1-channel inputs are padded as in that code (first conv padding 3, AlexNet 4: 28 px acts as 32).
Deviation, for inputs other than 28/32 px only: the classifier's input size is inferred from the
input (that code hard-codes the 32 px sizes and fails on Tiny-ImageNet's 64 px), and the ResNet's
average pool shrinks to the feature map when it is smaller than 4×4 (8 px digits).
"""
from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from timm.models import register_model
from torch import nn

from ddbench.models.classic import timm_entrypoint


def _size(img_size: int | tuple[int, int]) -> int:
    return img_size if isinstance(img_size, int) else int(img_size[0])


def _instance_norm(channels: int) -> nn.Module:
    return nn.GroupNorm(channels, channels, affine=True)


def _flat_features(features: nn.Module, in_chans: int, size: int) -> int:
    with torch.no_grad():
        return int(features(torch.zeros(1, in_chans, size, size)).numel())


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _instance_norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = _instance_norm(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), _instance_norm(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))


class ResNet18DC(nn.Module):
    """ResNet-18 of the DC/MTT code: instance norm, 3×3 stride-1 stem, no max-pool, 4×4 average pool."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, img_size: int | tuple[int, int] = 32) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_chans, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = _instance_norm(64)
        blocks, in_planes = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks.append(nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = blocks
        self.classifier = nn.Linear(_flat_features(self._pooled, in_chans, _size(img_size)), num_classes)

    def _pooled(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return F.avg_pool2d(out, min(4, out.shape[-1]))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._pooled(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


class VGG11DC(nn.Module):
    """VGG-11 of the DC/MTT code: conv3×3 → instance norm → ReLU, five 2×2 max-pools, one linear layer."""

    LAYOUT = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")

    def __init__(self, num_classes: int = 10, in_chans: int = 3, img_size: int | tuple[int, int] = 32) -> None:
        super().__init__()
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        channels = in_chans
        for i, item in enumerate(self.LAYOUT):
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=3 if in_chans == 1 and i == 0 else 1), _instance_norm(item),
                           nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        try:
            flat = _flat_features(self.features, in_chans, _size(img_size))
        except RuntimeError:
            raise ValueError(f"VGG-11's five 2×2 max-pools need inputs of at least 32 px, not {_size(img_size)}") from None
        self.classifier = nn.Linear(flat, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


class AlexNetDC(nn.Module):
    """AlexNet of the DC/MTT code: conv5(128) → conv5(192) → conv3(256, 192, 192), ReLU, three max-pools, no norm."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, img_size: int | tuple[int, int] = 32) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 128, 5, stride=1, padding=4 if in_chans == 1 else 2), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
            nn.Conv2d(128, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
            nn.Conv2d(192, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 192, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(192, 192, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        )
        self.fc = nn.Linear(_flat_features(self.features, in_chans, _size(img_size)), num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


CROSS_ARCH = {"resnet18_dc": ResNet18DC, "vgg11_dc": VGG11DC, "alexnet_dc": AlexNetDC}

for _name, _cls in CROSS_ARCH.items():
    setattr(sys.modules[__name__], _name, register_model(timm_entrypoint(_name, _cls)))
