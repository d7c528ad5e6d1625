"""The uint8 tensor cache: the first load converts a dataset, later loads take well under a second."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ddbench.core.paths import atomic_path, user_cache_root
from ddbench.data.base import ImageDataset, Splits, to_nchw

CACHE_FORMAT = 2  # 2: the data fingerprint and completeness are kept with the arrays


def cache_dir() -> Path:
    return user_cache_root() / "datasets"


def fingerprint(parts: list[str]) -> str:
    return hashlib.sha1(json.dumps([CACHE_FORMAT, *parts]).encode()).hexdigest()[:16]


def file_fingerprint(paths: list[Path]) -> list[str]:
    out = []
    for path in sorted(paths):
        stat = path.stat()
        out.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return out


def save(path: Path, name: str, splits: Splits, mean: tuple, std: tuple, source: str, fingerprint: str,
         complete: bool, origin: str) -> None:
    """Write the cache file; `origin` names the source files by absolute path (`source` is as the user gave it)."""
    tensors = {key: to_nchw(getattr(splits, key).astype(np.uint8)) for key in ("x_train", "x_test")}
    tensors |= {key: torch.from_numpy(getattr(splits, key).astype(np.int64)) for key in ("y_train", "y_test")}
    meta = {"name": name, "class_names": json.dumps(splits.class_names), "mean": json.dumps(mean), "std": json.dumps(std), "source": source,
            "fingerprint": fingerprint, "complete": json.dumps(complete), "origin": origin}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def drop_stale(keep: Path, name: str, origin: str) -> int:
    """Delete this dataset's other cache files made from the same source files, the copies a changed file left behind.

    The key fingerprints the source file's size and mtime, so a file that is replaced or re-mounted (same path, new
    mtime) gets a new cache file and the old one, 55-185 MB, can never be hit again. Files made from another source
    (another data root) are kept; so are files written before `origin` was recorded. Returns how many were deleted.
    """
    dropped = 0
    for other in keep.parent.glob(f"{name}-*.safetensors"):
        if other == keep:
            continue
        try:
            with safe_open(str(other), framework="pt") as handle:
                meta = handle.metadata() or {}
        except (SafetensorError, OSError):
            continue  # another process may be writing it; a damaged file is removed when it is next loaded
        if meta.get("name") == name and meta.get("origin") == origin:
            other.unlink(missing_ok=True)
            dropped += 1
    return dropped


def load(path: Path) -> ImageDataset | None:
    """The cached dataset, or None when the cache file is missing or damaged (it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata()
        tensors = load_file(str(path))
        return ImageDataset(
            name=meta["name"], x_train=tensors["x_train"], y_train=tensors["y_train"],
            x_test=tensors["x_test"], y_test=tensors["y_test"],
            class_names=json.loads(meta["class_names"]), mean=tuple(json.loads(meta["mean"])),
            std=tuple(json.loads(meta["std"])), source=meta["source"], fingerprint=meta["fingerprint"],
            complete=bool(json.loads(meta["complete"])),
        )
    except (SafetensorError, OSError, KeyError, ValueError, json.JSONDecodeError):
        path.unlink(missing_ok=True)
        return None
