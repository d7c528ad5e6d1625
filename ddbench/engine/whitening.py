"""ZCA whitening as a cached artefact, keyed by what determines it: the dataset's fingerprint (the content of its
arrays), the space the images are whitened from, and eps. Never by the matrix's float bytes, which depend on the
thread count, so that a driver and its workers (any thread count, any node) agree on every key built on it.

    space = pending_zca_space(train, plain)           # the key only: plans and pickles small, fits nothing
    space = resolve_space(space, train, cache_dir)     # where the work runs: read from the cache, or fitted once and saved
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ddbench.core.paths import atomic_path
from ddbench.data import ImageDataset
from ddbench.data.space import ZCA, ImageSpace

log = logging.getLogger(__name__)

ZCA_VERSION = 1
_RESOLVED: dict[str, ZCA] = {}  # key -> the fitted ZCA, once per process


def zca_key(train: ImageDataset, base: ImageSpace, eps: float = 0.1) -> str:
    ident = [ZCA_VERSION, train.name, train.fingerprint or train.source, list(base.mean), list(base.std), eps]
    return hashlib.sha256(json.dumps(ident, default=str).encode()).hexdigest()[:16]


def zca_path(train: ImageDataset, key: str, cache_dir: Path) -> Path:
    return cache_dir / "zca" / f"{train.name}-{key}.safetensors"


def pending_zca_space(train: ImageDataset, base: ImageSpace, eps: float = 0.1) -> ImageSpace:
    """`base` followed by a ZCA fitted on the whole training set in `base`, not yet fitted."""
    return ImageSpace(base.mean, base.std, ZCA.pending(zca_key(train, base, eps), eps))


def resolve_space(space: ImageSpace, train: ImageDataset, cache_dir: Path, device: torch.device | str | None = None
                  ) -> ImageSpace:
    """`space` with its pending ZCA made real: from this process's memory, the cache file, or a fit saved there."""
    zca = space.zca
    if zca is None or not zca.is_pending:
        return space
    path = zca_path(train, zca.key, cache_dir)
    if zca.key not in _RESOLVED and path.is_file():
        tensors = load_file(str(path))
        _RESOLVED[zca.key] = ZCA(tensors["mean"], tensors["transform"], zca.eps, zca.key)
    if zca.key not in _RESOLVED:
        log.info(f"fitting ZCA on all of {train.name} ({zca.key})")
        fitted = ZCA.fit(ImageSpace(space.mean, space.std).from_uint8(train.x_train, device), eps=zca.eps, key=zca.key)
        _RESOLVED[zca.key] = ZCA(fitted.mean.cpu(), fitted.transform.cpu(), zca.eps, zca.key)
    if not path.is_file():  # this cache gets the file too: its artefact task is done, and other workers read it
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({"mean": _RESOLVED[zca.key].mean.contiguous(), "transform": _RESOLVED[zca.key].transform.contiguous()},
                      str(tmp))
    return ImageSpace(space.mean, space.std, _RESOLVED[zca.key])


def zca_flops(train: ImageDataset) -> float:
    """The fit's cost: the covariance (2·N·D²) and its SVD (about 10·D³)."""
    d = train.channels * train.image_size[0] * train.image_size[1]
    return 2.0 * len(train.x_train) * d * d + 10.0 * d ** 3
