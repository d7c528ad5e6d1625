"""The common shape every dataset takes once loaded: uint8 NCHW tensors plus metadata."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ddbench.core.errors import DDBenchError


@dataclass(frozen=True)
class Splits:
    """Raw arrays as a reader returns them: uint8 images (N, H, W, C), int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]

    def check(self, name: str, source: Path | str) -> None:
        """Refuse arrays that are not a well-formed image-classification dataset."""
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != 4 or x.dtype != np.uint8:
                raise DDBenchError(f"{name}: {source}: x_{split} must be uint8 (N, H, W, C), got {x.dtype} {x.shape}")
            if not np.issubdtype(y.dtype, np.integer):
                raise DDBenchError(f"{name}: {source}: y_{split} must hold integer class labels, got {y.dtype}")
            if len(x) == 0:
                raise DDBenchError(f"{name}: {source}: the {split} split is empty")
            if y.ndim != 1 or len(y) != len(x):
                raise DDBenchError(f"{name}: {source}: y_{split} must have one label per image ({len(x)}), got shape {y.shape}")
            if len(y) and (y.min() < 0 or y.max() >= len(self.class_names)):
                raise DDBenchError(f"{name}: {source}: y_{split} labels must lie in [0, {len(self.class_names)})")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DDBenchError(f"{name}: {source}: train images {self.x_train.shape[1:]} and test images "
                               f"{self.x_test.shape[1:]} differ in shape")


@dataclass(frozen=True)
class Expected:
    """What a complete copy of a dataset holds: classes, split sizes, image shape (H, W, C)."""

    classes: int
    train: int
    test: int
    shape: tuple[int, int, int]

    def check(self, name: str, source: Path | str, splits: Splits) -> bool:
        """Refuse a copy that is another dataset; return False for a partial copy (other split sizes, or a
        class without images: evaluation then refuses any card whose IPC that class cannot fill)."""
        where = f"{name}: {source}"
        if len(splits.class_names) != self.classes:
            raise DDBenchError(f"{where} has {len(splits.class_names)} classes; {name} has {self.classes}")
        if tuple(splits.x_train.shape[1:]) != self.shape:
            raise DDBenchError(f"{where}: images are {'×'.join(map(str, splits.x_train.shape[1:]))} (H×W×C); "
                               f"{name} is {'×'.join(map(str, self.shape))}")
        every_class = all(np.bincount(getattr(splits, f"y_{split}"), minlength=self.classes).min() > 0
                          for split in ("train", "test"))
        return every_class and (len(splits.x_train), len(splits.x_test)) == (self.train, self.test)


def to_nchw(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, C) pixels as an (N, C, H, W) tensor with plain NCHW strides.

    `.permute(...).contiguous()` (and numpy's `ascontiguousarray`) leaves 1-channel images with
    channels-last strides (both layouts count as contiguous), and convolutions then take their
    channels-last kernels: 1.1-1.2x slower at fp32, 2.5-2.9x under bf16 on a CPU
    (benchmarks/bench_layout.py; benchmarks/RESULTS.md, Precision).
    """
    return torch.from_numpy(images).permute(0, 3, 1, 2).clone(memory_format=torch.contiguous_format)


def data_fingerprint(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> str:
    """sha256 (first 16 hex digits) of a dataset's arrays: rows name the exact data they were made on."""
    h = hashlib.sha256()
    for array in (x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)):
        h.update(str(array.shape).encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class DatasetInfo:
    """What a set needs to know about its dataset (class names, image shape, normalisation), without the images."""

    name: str
    class_names: list[str]
    channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class ImageDataset:
    """A loaded dataset. Images are uint8 (N, C, H, W) on the CPU; mean/std are per channel in [0, 1]."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = ""
    fingerprint: str = ""  # data_fingerprint of the arrays
    complete: bool = True  # False: a partial copy (other split sizes, or a class without images); rows non-standard

    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.y_train, minlength=self.num_classes)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.x_train.shape[2]), int(self.x_train.shape[3])

    def info(self) -> DatasetInfo:
        return DatasetInfo(self.name, list(self.class_names), self.channels, self.image_size, self.mean, self.std)

    def indices_of_class(self, c: int) -> torch.Tensor:
        return torch.nonzero(self.y_train == c, as_tuple=False).flatten()


@dataclass(frozen=True)
class DatasetSpec:
    """What ddbench knows about one dataset: how to find, read and (where allowed) download it."""

    name: str
    description: str
    official_files: Sequence[str]
    read_official: Callable[[Path], Splits | None]
    download: Callable[[Path], None] | None = None
    mean: tuple[float, ...] | None = None  # the field's constants; None = computed on the train split
    std: tuple[float, ...] | None = None
    bundled: bool = False  # ships with a dependency: always available, no data root needed
    expected: Expected | None = None  # a complete copy's classes, split sizes and image shape
    aliases: tuple[str, ...] = field(default=())

    def npz_names(self) -> list[str]:
        names = [self.name, *self.aliases]
        return [f"{n}.npz" for n in names] + [f"{n}-jpeg.npz" for n in names]


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] of uint8 (N, H, W, C) images, computed in float64 chunks."""
    c = x.shape[-1]
    total = np.zeros(c)
    total_sq = np.zeros(c)
    count = 0
    for start in range(0, len(x), 4096):
        chunk = x[start : start + 4096].reshape(-1, c).astype(np.float64) / 255.0
        total += chunk.sum(0)
        total_sq += (chunk**2).sum(0)
        count += len(chunk)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-12))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
