"""CIFAR-10 and CIFAR-100 from the official python pickles (torchvision's layout).

The pickles are read with a restricted unpickler that only rebuilds plain containers and
numpy arrays, so a tampered file cannot run code.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ddbench.core.errors import DDBenchError
from ddbench.data.base import Splits

LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "batches.meta", "labels", "label_names"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "meta", "fine_labels", "fine_label_names"),
}
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _load(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return _SafeUnpickler(handle, encoding="latin1").load()
    except PermissionError:
        raise DDBenchError(f"cannot read {path}: permission denied (fix its permissions)") from None
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError) as exc:
        raise DDBenchError(f"{path} is corrupt, truncated or not a CIFAR pickle ({exc})") from None


def official_files(name: str) -> list[str]:
    folder, train, test, meta, _, _ = LAYOUT[name]
    return [f"{folder}/{f}" for f in (*train, *test, meta)]


def _images(batch: dict, path: Path) -> np.ndarray:
    data = np.asarray(batch.get("data"))
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DDBenchError(f"{path}: 'data' must be (N, 3072) uint8, got {data.shape}")
    return data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def reader(name: str):
    folder, train_files, test_files, meta_file, label_key, names_key = LAYOUT[name]

    def read_official(root: Path) -> Splits | None:
        base = root / folder
        if not all((base / f).is_file() for f in (*train_files, *test_files, meta_file)):
            return None

        def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
            xs, ys = [], []
            for f in files:
                batch = _load(base / f)
                if label_key not in batch:
                    raise DDBenchError(f"{base / f}: no '{label_key}' entry; is this the right CIFAR version?")
                xs.append(_images(batch, base / f))
                ys.append(np.asarray(batch[label_key], dtype=np.int64))
            return np.concatenate(xs), np.concatenate(ys)

        x_train, y_train = read(train_files)
        x_test, y_test = read(test_files)
        classes = [str(c) for c in _load(base / meta_file)[names_key]]
        return Splits(x_train, y_train, x_test, y_test, classes)

    return read_official


def downloader(name: str):
    def download(root: Path) -> None:
        from torchvision import datasets

        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        cls(str(root), train=True, download=True)

    return download
