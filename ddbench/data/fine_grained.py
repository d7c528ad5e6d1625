"""Fine-grained downstream datasets for the transfer protocol: FGVC-Aircraft, Stanford Dogs, Flowers-102.

Each is read from its official distribution and resized to a fixed size with LANCZOS (32 px for
CIFAR-sourced transfer, 64 px for Tiny-ImageNet); normalisation statistics are their own.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ddbench.core.errors import DDBenchError
from ddbench.data.base import Splits
from ddbench.data.folders import load_images

AIRCRAFT_FILES = ["fgvc-aircraft-2013b/data/variants.txt", "fgvc-aircraft-2013b/data/images_variant_trainval.txt",
                  "fgvc-aircraft-2013b/data/images_variant_test.txt", "fgvc-aircraft-2013b/data/images/"]
DOGS_FILES = ["StanfordDogs/train_list.mat", "StanfordDogs/test_list.mat", "StanfordDogs/Images/"]
FLOWERS_FILES = ["flowers-102/imagelabels.mat", "flowers-102/setid.mat", "flowers-102/jpg/"]
DOGS_URLS = ["http://vision.stanford.edu/aditya86/ImageNetDogs/images.tar",
             "http://vision.stanford.edu/aditya86/ImageNetDogs/lists.tar"]


def _loadmat(path: Path) -> dict:
    from scipy.io import loadmat

    try:
        return loadmat(str(path))
    except (OSError, ValueError, TypeError) as exc:
        raise DDBenchError(f"{path} is not a readable .mat file ({exc})") from None


def _mat_str(value) -> str:
    """The string inside MATLAB cell nesting (scipy returns arrays of arrays of str)."""
    while not isinstance(value, str):
        value = value[0]
    return value


def aircraft_reader(size: int):
    """FGVC-Aircraft, variant labels (100 classes), trainval / test."""

    def read(root: Path) -> Splits | None:
        base = root / "fgvc-aircraft-2013b" / "data"
        if not all((base / f).is_file() for f in ("variants.txt", "images_variant_trainval.txt", "images_variant_test.txt")):
            return None
        variants = [v.strip() for v in (base / "variants.txt").read_text().splitlines() if v.strip()]
        index = {v: i for i, v in enumerate(variants)}

        def split(name: str) -> tuple[np.ndarray, np.ndarray]:
            ids, labels = [], []
            for line in (base / name).read_text().splitlines():
                if not line.strip():
                    continue
                image_id, _, variant = line.strip().partition(" ")
                if variant not in index:
                    raise DDBenchError(f"aircraft: {name} names unknown variant '{variant}'")
                ids.append(base / "images" / f"{image_id}.jpg")
                labels.append(index[variant])
            return load_images(ids, size), np.asarray(labels, np.int64)

        return Splits(*split("images_variant_trainval.txt"), *split("images_variant_test.txt"), variants)

    return read


def dogs_reader(size: int):
    """Stanford Dogs (120 breeds), the official train_list.mat / test_list.mat."""

    def read(root: Path) -> Splits | None:
        base = root / "StanfordDogs"
        if not ((base / "train_list.mat").is_file() and (base / "test_list.mat").is_file()):
            return None

        def split(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
            mat = _loadmat(base / name)
            files = [_mat_str(f) for f in mat["file_list"]]
            labels = np.asarray(mat["labels"]).reshape(-1).astype(np.int64) - 1
            return load_images([base / "Images" / f for f in files], size), labels, files

        x_tr, y_tr, files = split("train_list.mat")
        x_te, y_te, _ = split("test_list.mat")
        names = {}
        for f, y in zip(files, y_tr):
            names[int(y)] = f.split("/")[0].split("-", 1)[-1]
        classes = [names.get(i, str(i)) for i in range(int(max(y_tr.max(), y_te.max())) + 1)]
        return Splits(x_tr, y_tr, x_te, y_te, classes)

    return read


def flowers_reader(size: int):
    """Flowers-102 (102 classes): setid.mat's trnid as train, tstid as test."""

    def read(root: Path) -> Splits | None:
        base = root / "flowers-102"
        if not ((base / "imagelabels.mat").is_file() and (base / "setid.mat").is_file()):
            return None
        labels = np.asarray(_loadmat(base / "imagelabels.mat")["labels"]).reshape(-1).astype(np.int64) - 1
        setid = _loadmat(base / "setid.mat")

        def split(key: str) -> tuple[np.ndarray, np.ndarray]:
            ids = np.asarray(setid[key]).reshape(-1).astype(np.int64)
            paths = [base / "jpg" / f"image_{i:05d}.jpg" for i in ids]
            return load_images(paths, size), labels[ids - 1]

        return Splits(*split("trnid"), *split("tstid"), [str(i) for i in range(int(labels.max()) + 1)])

    return read


def download_aircraft(root: Path) -> None:
    from torchvision.datasets import FGVCAircraft

    FGVCAircraft(str(root), split="trainval", download=True)


def download_flowers(root: Path) -> None:
    from torchvision.datasets import Flowers102

    Flowers102(str(root), split="train", download=True)


def download_dogs(root: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    for url in DOGS_URLS:
        download_and_extract_archive(url, download_root=str(root / "StanfordDogs"))
