"""Image-folder datasets: Tiny-ImageNet (tiny-imagenet-200/) and CUB-200-2011 (CUB_200_2011/)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ddbench.core.errors import DDBenchError
from ddbench.data.base import Splits

TINY_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
CUB_URL = "https://data.caltech.edu/records/65de6-vvk70/files/CUB_200_2011.tgz"
TINY_FILES = ["tiny-imagenet-200/wnids.txt", "tiny-imagenet-200/train/<wnid>/images/*.JPEG",
              "tiny-imagenet-200/val/val_annotations.txt", "tiny-imagenet-200/val/images/*.JPEG"]
CUB_FILES = ["CUB_200_2011/images.txt", "CUB_200_2011/train_test_split.txt",
             "CUB_200_2011/image_class_labels.txt", "CUB_200_2011/classes.txt", "CUB_200_2011/images/"]


def load_images(paths: Sequence[Path], size: int | None = None) -> np.ndarray:
    """Decode images to uint8 RGB (N, size, size, 3); resize with LANCZOS when `size` is given."""
    from PIL import Image, UnidentifiedImageError

    out = []
    for path in paths:
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
                if size is not None and img.size != (size, size):
                    img = img.resize((size, size), Image.LANCZOS)
                out.append(np.asarray(img, dtype=np.uint8))
        except (OSError, UnidentifiedImageError) as exc:
            raise DDBenchError(f"{path} is not a readable image ({exc})") from None
    if not out:
        raise DDBenchError("no images found")
    shapes = {a.shape for a in out}
    if len(shapes) > 1:
        raise DDBenchError(f"images differ in size {sorted(shapes)[:3]}; expected one size")
    return np.stack(out)


def _lines(path: Path) -> list[list[str]]:
    try:
        return [line.split() for line in path.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise DDBenchError(f"cannot read {path} ({exc})") from None


def read_tinyimagenet(root: Path) -> Splits | None:
    """Train = train/<wnid>/images; test = val (the official test split has no labels)."""
    base = root / "tiny-imagenet-200"
    if not (base / "wnids.txt").is_file() or not (base / "val" / "val_annotations.txt").is_file():
        return None
    wnids = [row[0] for row in _lines(base / "wnids.txt")]
    index = {w: i for i, w in enumerate(wnids)}
    words = {}
    if (base / "words.txt").is_file():
        for line in (base / "words.txt").read_text().splitlines():
            wnid, _, text = line.partition("\t")
            words[wnid] = text.split(",")[0].strip()
    train_paths, train_labels = [], []
    for wnid in wnids:
        files = sorted((base / "train" / wnid / "images").glob("*.JPEG"))
        if not files:
            raise DDBenchError(f"tinyimagenet: {base / 'train' / wnid / 'images'} holds no .JPEG files")
        train_paths += files
        train_labels += [index[wnid]] * len(files)
    val_paths, val_labels = [], []
    for row in _lines(base / "val" / "val_annotations.txt"):
        if row[1] not in index:
            raise DDBenchError(f"tinyimagenet: val_annotations.txt names unknown class {row[1]}")
        val_paths.append(base / "val" / "images" / row[0])
        val_labels.append(index[row[1]])
    return Splits(
        load_images(train_paths, 64), np.asarray(train_labels, np.int64),
        load_images(val_paths, 64), np.asarray(val_labels, np.int64),
        [words.get(w, w) for w in wnids],
    )


def cub_reader(size: int):
    """CUB-200-2011 with the official train_test_split.txt (5,994 / 5,794), resized to size×size (LANCZOS)."""

    def read_cub(root: Path) -> Splits | None:
        base = root / "CUB_200_2011"
        needed = ["images.txt", "train_test_split.txt", "image_class_labels.txt"]
        if not all((base / f).is_file() for f in needed):
            return None
        images = {row[0]: row[1] for row in _lines(base / "images.txt")}
        is_train = {row[0]: row[1] == "1" for row in _lines(base / "train_test_split.txt")}
        label = {row[0]: int(row[1]) - 1 for row in _lines(base / "image_class_labels.txt")}
        if not (images.keys() == is_train.keys() == label.keys()):
            raise DDBenchError(f"cub200: {base}: images.txt, train_test_split.txt and image_class_labels.txt list different image ids")
        order = sorted(images, key=int)
        classes = [f"class_{i + 1:03d}" for i in range(max(label.values()) + 1)]
        if (base / "classes.txt").is_file():
            classes = [row[1] for row in _lines(base / "classes.txt")]
        splits = {}
        for split, flag in (("train", True), ("test", False)):
            ids = [i for i in order if is_train[i] == flag]
            splits[split] = (load_images([base / "images" / images[i] for i in ids], size), np.asarray([label[i] for i in ids], np.int64))
        return Splits(*splits["train"], *splits["test"], classes)

    return read_cub


def _download_archive(url: str):
    def download(root: Path) -> None:
        from torchvision.datasets.utils import download_and_extract_archive

        download_and_extract_archive(url, download_root=str(root))

    return download


download_tinyimagenet = _download_archive(TINY_URL)
download_cub = _download_archive(CUB_URL)
