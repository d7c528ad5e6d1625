"""Normalisation presets: the space each source codebase saves its images in, per dataset.

Facts read from the repositories (see README, "Evaluate a set made elsewhere"):
- MTT and DATM (GeorgeCazenavette/mtt-distillation, NUS-HPC-AI-Lab/DATM) normalise CIFAR-10 *and*
  CIFAR-100 with CIFAR-10's constants; with `--zca` the images are saved in ZCA space (kornia
  ZCAWhitening, eps 0.1, fitted on the whole training set after ToTensor only: no mean/std).
- DC / DSA / DM (VICO-UoE/DatasetCondensation): CIFAR-100 with its own constants; no ZCA.
- MKDT: MTT's code base for CIFAR-10 and Tiny-ImageNet, the authors' CIFAR-100 constants.
- SRe2L / RDED image folders and DD-Ranking tensors hold pixels (ddbench: values in [0, 1]).
"""
from __future__ import annotations

from ddbench.core.errors import DDBenchError
from ddbench.data.space import ImageSpace

MNIST = ((0.1307,), (0.3081,))
CIFAR10 = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
CIFAR100_DC = ((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762))
CIFAR100_MKDT = ((0.5071, 0.4865, 0.4409), (0.2009, 0.1984, 0.2023))
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
PIXELS = "pixels"  # values in [0, 1]: mean 0, std 1 per channel

PRESETS: dict[str, dict[str, tuple[tuple[float, ...], tuple[float, ...]]]] = {
    "mtt": {"mnist": MNIST, "fashion_mnist": ((0.2861,), (0.3530,)), "cifar10": CIFAR10, "cifar100": CIFAR10,
            "tinyimagenet": IMAGENET},
    "dc": {"mnist": MNIST, "fashion_mnist": ((0.2861,), (0.3530,)), "cifar10": CIFAR10, "cifar100": CIFAR100_DC,
           "tinyimagenet": IMAGENET},
    "mkdt": {"cifar10": CIFAR10, "cifar100": CIFAR100_MKDT, "tinyimagenet": IMAGENET},
}
PRESETS["datm"] = PRESETS["mtt"]


def pixel_space(channels: int) -> ImageSpace:
    return ImageSpace(tuple(0.0 for _ in range(channels)), tuple(1.0 for _ in range(channels)))


def resolve(preset: str, dataset: str, channels: int, dataset_space: ImageSpace) -> tuple[ImageSpace, str]:
    """The space named by `preset` ("mtt", "dc", "pixels", "dataset" or "MEAN,..:STD,..") and a description."""
    if preset == PIXELS:
        return pixel_space(channels), "pixels in [0, 1]"
    if preset == "dataset":
        return dataset_space, f"ddbench's {dataset} statistics"
    if ":" in preset:
        try:
            mean, std = (tuple(float(v) for v in part.split(",")) for part in preset.split(":"))
        except ValueError:
            raise DDBenchError(f"--normalize '{preset}': give MEAN,...:STD,... with one value per channel") from None
        if len(mean) != channels or len(std) != channels or min(std) <= 0:
            raise DDBenchError(f"--normalize '{preset}': {channels} mean and {channels} positive std value(s) expected")
        return ImageSpace(mean, std), f"mean {mean}, std {std} (given)"
    table = PRESETS.get(preset)
    if table is None:
        raise DDBenchError(f"unknown normalisation preset '{preset}'; known: {', '.join([*PRESETS, PIXELS, 'dataset'])} "
                           "or MEAN,...:STD,...")
    if dataset not in table:
        raise DDBenchError(f"no '{preset}' normalisation is known for {dataset}; pass --normalize dataset|pixels|MEAN,...:STD,...")
    mean, std = table[dataset]
    if len(mean) != channels:
        raise DDBenchError(f"the '{preset}' preset for {dataset} has {len(mean)} channel(s); the images have {channels}")
    return ImageSpace(mean, std), f"{preset}'s {dataset} constants: mean {mean}, std {std}"
