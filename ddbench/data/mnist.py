"""MNIST and Fashion-MNIST from their IDX files, in torchvision's folder layout."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ddbench.core.errors import DDBenchError
from ddbench.data.base import Splits

FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def official_files(name: str) -> list[str]:
    return [f"{FOLDERS[name]}/raw/{f}[.gz]" for f in FILES.values()]


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped), checking its magic number and its length."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except PermissionError:
        raise DDBenchError(f"cannot read {path}: permission denied (fix its permissions)") from None
    except (OSError, EOFError) as exc:
        raise DDBenchError(f"{path} is corrupt or truncated ({exc})") from None
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DDBenchError(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise DDBenchError(f"{path} is truncated or padded: {len(data)} bytes, the header promises {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def _find(raw: Path, stem: str) -> Path | None:
    for candidate in (raw / stem, raw / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def reader(name: str):
    def read_official(root: Path) -> Splits | None:
        raw = root / FOLDERS[name] / "raw"
        paths = {key: _find(raw, stem) for key, stem in FILES.items()}
        if not all(paths.values()):
            return None
        arrays = {key: read_idx(path) for key, path in paths.items()}  # type: ignore[arg-type]
        classes = FASHION_CLASSES if name == "fashion_mnist" else [str(i) for i in range(10)]
        return Splits(
            arrays["x_train"][..., None], arrays["y_train"].astype(np.int64),
            arrays["x_test"][..., None], arrays["y_test"].astype(np.int64), classes,
        )

    return read_official


def downloader(name: str):
    def download(root: Path) -> None:
        from torchvision import datasets

        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
        for train in (True, False):
            cls(str(root), train=train, download=True)

    return download
