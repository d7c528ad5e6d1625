"""Datasets: find them under a data root, read the official formats, cache them as uint8 tensors.

    load_dataset("mnist", data_root)   # -> ImageDataset (uint8 NCHW tensors + metadata)
    list_datasets()                    # names
    dataset_status(name, data_root)    # what is present, and where
    prepare_dataset(name, data_root)   # download where allowed, then convert
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ddbench.core.errors import DDBenchError
from ddbench.core.paths import resolve_data_root
from ddbench.core.registry import Registry
from ddbench.data import cache, cifar, fine_grained, folders, mnist
from ddbench.data.base import DatasetInfo, DatasetSpec, Expected, ImageDataset, Splits, channel_stats, data_fingerprint, to_nchw
from ddbench.data.digits import read_digits
from ddbench.data.npz import read_npz, read_npz_class_names

log = logging.getLogger(__name__)

__all__ = ["ImageDataset", "Splits", "load_dataset", "list_datasets", "dataset_status", "prepare_dataset", "get_spec"]

MEAN_TOLERANCE = 0.1  # per channel, in [0, 1] pixels: the field's constants vs a true copy differ by < 0.06 (Tiny-ImageNet)
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

_BUILTIN: list[DatasetSpec] = [
    DatasetSpec("mnist", "MNIST, 60k/10k, 28×28 gray", mnist.official_files("mnist"), mnist.reader("mnist"),
                mnist.downloader("mnist"), (0.1307,), (0.3081,), expected=Expected(10, 60000, 10000, (28, 28, 1))),
    DatasetSpec("fashion_mnist", "Fashion-MNIST, 60k/10k, 28×28 gray", mnist.official_files("fashion_mnist"),
                mnist.reader("fashion_mnist"), mnist.downloader("fashion_mnist"), (0.2861,), (0.3530,),
                aliases=("fashion-mnist", "fashionmnist"), expected=Expected(10, 60000, 10000, (28, 28, 1))),
    DatasetSpec("cifar10", "CIFAR-10, 50k/10k, 32×32 RGB", cifar.official_files("cifar10"), cifar.reader("cifar10"),
                cifar.downloader("cifar10"), (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), aliases=("cifar-10",),
                expected=Expected(10, 50000, 10000, (32, 32, 3))),
    DatasetSpec("cifar100", "CIFAR-100, 50k/10k, 32×32 RGB", cifar.official_files("cifar100"), cifar.reader("cifar100"),
                cifar.downloader("cifar100"), (0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762), aliases=("cifar-100",),
                expected=Expected(100, 50000, 10000, (32, 32, 3))),
    DatasetSpec("tinyimagenet", "Tiny-ImageNet, 100k/10k (val as test), 64×64 RGB", folders.TINY_FILES,
                folders.read_tinyimagenet, folders.download_tinyimagenet, _IMAGENET_MEAN, _IMAGENET_STD,
                aliases=("tiny-imagenet", "tiny-imagenet-200"), expected=Expected(200, 100000, 10000, (64, 64, 3))),
    DatasetSpec("cub200", "CUB-200-2011, 5,994/5,794, resized to 32×32 RGB (LANCZOS)", folders.CUB_FILES,
                folders.cub_reader(32), folders.download_cub, aliases=("cub-200-2011",),
                expected=Expected(200, 5994, 5794, (32, 32, 3))),
    DatasetSpec("cub200_64", "CUB-200-2011, 5,994/5,794, resized to 64×64 RGB (LANCZOS)", folders.CUB_FILES,
                folders.cub_reader(64), folders.download_cub, expected=Expected(200, 5994, 5794, (64, 64, 3))),
    DatasetSpec("digits", "scikit-learn's bundled 8×8 digits, 1,257/540, gray (offline anywhere)", [],
                read_digits, None, bundled=True, expected=Expected(10, 1257, 540, (8, 8, 1))),
    *[spec for size, suffix in ((32, ""), (64, "_64")) for spec in (
        DatasetSpec(f"aircraft{suffix}", f"FGVC-Aircraft variants, trainval/test, {size}×{size} RGB (LANCZOS)",
                    fine_grained.AIRCRAFT_FILES, fine_grained.aircraft_reader(size), fine_grained.download_aircraft,
                    expected=Expected(100, 6667, 3333, (size, size, 3))),
        DatasetSpec(f"dogs{suffix}", f"Stanford Dogs, train_list/test_list, {size}×{size} RGB (LANCZOS)",
                    fine_grained.DOGS_FILES, fine_grained.dogs_reader(size), fine_grained.download_dogs,
                    expected=Expected(120, 12000, 8580, (size, size, 3))),
        DatasetSpec(f"flowers102{suffix}", f"Flowers-102, train/test (setid.mat), {size}×{size} RGB (LANCZOS)",
                    fine_grained.FLOWERS_FILES, fine_grained.flowers_reader(size), fine_grained.download_flowers,
                    expected=Expected(102, 1020, 6149, (size, size, 3))),
    )],
]

# Every dataset ddbench reads, by name and alias. A plug-in package adds one with an entry point in the group
# "ddbench.datasets" naming a DatasetSpec, or by calling DATASETS.register(spec.name, spec, spec.aliases).
DATASETS: Registry[DatasetSpec] = Registry("dataset", entry_points="ddbench.datasets")
for _spec in _BUILTIN:
    DATASETS.register(_spec.name, _spec, _spec.aliases)


def list_datasets(pattern: str = "*") -> list[str]:
    return sorted(DATASETS.names(pattern))


def get_spec(name: str) -> DatasetSpec:
    return DATASETS.get(name)


@dataclass(frozen=True)
class Source:
    kind: str  # "npz", "official" or "bundled"
    paths: tuple[Path, ...]


def find_source(spec: DatasetSpec, root: Path) -> Source | None:
    """Where the data for `spec` is under `root`: a plain/JPEG .npz first, then the official layout."""
    if spec.bundled:
        return Source("bundled", ())
    for npz_name in spec.npz_names():
        if (root / npz_name).is_file():
            return Source("npz", (root / npz_name,))
    if not root.is_dir():
        return None
    found: list[Path] = []
    for entry in spec.official_files:
        pattern = entry.replace("<wnid>", "*").replace("[.gz]", "*").rstrip("/")
        hit = next(iter(root.glob(pattern)), None)
        if hit is None:
            return None
        if "*" not in entry and "<" not in entry:  # fixed names fingerprint the source; globs only prove presence
            found.append(hit)
    return Source("official", tuple(found)) if found else None


def _missing_error(spec: DatasetSpec, root: Path) -> DDBenchError:
    expected = " or ".join(spec.npz_names()[:2]) + ", or " + ", ".join(spec.official_files)
    return DDBenchError(
        f"dataset '{spec.name}' not found under {root} (searched {root}); expected {expected}; "
        f"run `ddbench data prepare {spec.name} --data-root {root}`"
    )


def load_dataset(name: str, data_root: str | Path | None = None, use_cache: bool = True) -> ImageDataset:
    """Load a dataset as uint8 NCHW tensors, converting it to the tensor cache on first use."""
    spec = get_spec(name)
    root = resolve_data_root(data_root)
    source = find_source(spec, root)
    if source is None:
        raise _missing_error(spec, root)
    if source.kind == "bundled":
        import sklearn

        parts = [spec.name, "bundled", sklearn.__version__]
    else:
        parts = [spec.name, source.kind, *cache.file_fingerprint(list(source.paths))]
    cache_path = cache.cache_dir() / f"{spec.name}-{cache.fingerprint(parts)}.safetensors"
    if use_cache and (hit := cache.load(cache_path)) is not None:
        return hit
    if source.kind == "npz":
        splits = read_npz(source.paths[0], spec.name)
        where = str(source.paths[0])
    else:
        splits = spec.read_official(root)
        where = "scikit-learn" if spec.bundled else str(root)
        if splits is None:
            raise _missing_error(spec, root)
    splits.check(spec.name, where)
    complete = spec.expected.check(spec.name, where, splits) if spec.expected else True
    if not complete:
        assert spec.expected is not None
        log.warning("%s: %s is a partial copy (%d train / %d test images; the dataset has %d / %d, every class in "
                    "both): rows made on it are marked non-standard and never published", spec.name, where,
                    len(splits.x_train), len(splits.x_test), spec.expected.train, spec.expected.test)
    mean, std = (spec.mean, spec.std) if spec.mean else channel_stats(splits.x_train)
    if spec.mean and complete:  # plausibility: a copy whose pixels are not the dataset's (inverted, rescaled) is no copy
        measured = channel_stats(splits.x_train)[0]
        off = max(abs(a - b) for a, b in zip(measured, spec.mean))
        if off > MEAN_TOLERANCE:
            log.warning("%s: %s has per-channel pixel means %s, %.2f from the dataset's %s: not a standard copy (inverted or "
                        "rescaled?); rows made on it are marked non-standard and never published", spec.name, where,
                        tuple(round(m, 4) for m in measured), off, spec.mean)
            complete = False
    if len(mean) != splits.x_train.shape[-1]:
        raise DDBenchError(f"{spec.name}: {where} has {splits.x_train.shape[-1]} channels, expected {len(mean)}")
    fingerprint = data_fingerprint(splits.x_train, splits.y_train, splits.x_test, splits.y_test)
    if use_cache:
        origin = ":".join([source.kind, *(str(path.resolve()) for path in source.paths)])
        cache.save(cache_path, spec.name, splits, mean, std, where, fingerprint, complete, origin)
        if dropped := cache.drop_stale(cache_path, spec.name, origin):
            log.info("%s: removed %d stale cache file(s) made from an earlier version of %s", spec.name, dropped, where)
        if (hit := cache.load(cache_path)) is not None:
            return hit
    import torch

    return ImageDataset(spec.name, to_nchw(splits.x_train), torch.from_numpy(splits.y_train.astype("int64")),
                        to_nchw(splits.x_test), torch.from_numpy(splits.y_test.astype("int64")), splits.class_names,
                        tuple(mean), tuple(std), where, fingerprint, complete)


def dataset_info(name: str, data_root: str | Path | None = None) -> DatasetInfo:
    """Class names, image shape and normalisation of a dataset, reading no image where the spec holds the shape and
    the constants and the .npz holds its class names (one small key); otherwise (a spec without constants, an
    official layout) the dataset is loaded, with a line saying why."""
    spec = get_spec(name)
    root = resolve_data_root(data_root)
    source = find_source(spec, root)
    if source is None:
        raise _missing_error(spec, root)
    if spec.mean and spec.std and spec.expected and source.kind == "npz":
        names = read_npz_class_names(source.paths[0], spec.name)
        if names is not None and len(names) == spec.expected.classes:
            height, width, channels = spec.expected.shape
            return DatasetInfo(spec.name, names, channels, (height, width), tuple(spec.mean), tuple(spec.std))
    if not spec.bundled:  # a bundled dataset is read in a moment
        log.info("%s: reading the dataset for its class names and normalisation (its spec and file do not hold them)",
                 spec.name)
    return load_dataset(name, root).info()


def dataset_status(name: str, data_root: str | Path | None = None) -> dict:
    spec = get_spec(name)
    root = resolve_data_root(data_root)
    source = find_source(spec, root)
    return {
        "name": spec.name,
        "description": spec.description,
        "present": source is not None,
        "where": ("bundled with scikit-learn" if source and source.kind == "bundled"
                  else str(source.paths[0]) if source else f"missing under {root}"),
        "downloadable": spec.download is not None,
    }


def prepare_dataset(name: str, data_root: str | Path | None = None) -> ImageDataset:
    """Download the dataset where the source allows it (unless present), then convert it to the cache."""
    spec = get_spec(name)
    root = resolve_data_root(data_root)
    if find_source(spec, root) is None:
        if spec.download is None:
            raise _missing_error(spec, root)
        root.mkdir(parents=True, exist_ok=True)
        try:
            spec.download(root)
        except Exception as exc:  # network errors come in many types
            raise DDBenchError(
                f"downloading '{spec.name}' into {root} failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                f"without network, place {', '.join(spec.official_files)} under {root}"
            ) from None
    return load_dataset(spec.name, root)
