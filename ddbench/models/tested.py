"""The architectures ddbench tests at small input sizes (`ddbench list archs` prints this table)."""
from __future__ import annotations

from dataclasses import dataclass

from ddbench.models.convnet import VARIANTS


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
