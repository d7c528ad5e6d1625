"""Turn a set saved by another codebase into a ddbench set, recording every assumption made.

The images keep the space they were saved in (the source's normalisation, and its ZCA transform when
`zca`), so they are trained exactly as stored and the test images are mapped into that same space;
pixel images (uint8 files, image folders) are normalised as ddbench normalises its own real subsets.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ddbench.core.errors import DDBenchError
from ddbench.data import DatasetInfo, ImageDataset, dataset_info, load_dataset
from ddbench.data.space import ZCA, ImageSpace
from ddbench.interop import sources
from ddbench.interop.formats import FORMATS
from ddbench.interop.presets import PIXELS, pixel_space, resolve
from ddbench.store.distilled import DistilledSet

log = logging.getLogger(__name__)

WHITENED_STD = 0.5  # normalised images: pixel std near 1; ZCA-whitened (eps 0.1) pixels: 0.2-0.35


@dataclass(frozen=True)
class ImportOptions:
    format: str
    dataset: str
    data_root: str | Path | None = None
    lr: str | None = None  # a number, or "card" (no learned lr: the card's lr is used)
    zca: bool = False
    experiment: int = 0  # dc: which experiment of the result file
    iteration: str | None = None  # mtt/datm/mkdt: images_<iteration>.pt instead of the best/last
    normalize: str | None = None  # preset override (see presets.resolve)
    method: str = ""  # the method the set claims (default: the format's name)


def import_set(src: str | Path, opts: ImportOptions, dataset: ImageDataset | None = None) -> DistilledSet:
    """The set at `src` as a ddbench set. The dataset's images are read only for a ZCA fit (or where its spec and
    file do not hold its class names and constants); `dataset`, when given, is used as it is."""
    fmt = FORMATS.get(opts.format)  # an unknown format: one line, with suggestions
    src = Path(src)
    if not src.exists():
        raise DDBenchError(f"{src}: no such file or folder")
    info = dataset.info() if dataset is not None else dataset_info(opts.dataset, opts.data_root)
    source = fmt.read(src, opts, list(info.class_names))
    assumptions: dict[str, object] = {}
    images, space = _images_and_space(source, opts, info, assumptions, dataset)
    labels, label_mode = _labels(source, info, assumptions)
    lr = _learned_lr(source, opts, assumptions)
    ipc = int(torch.bincount(labels, minlength=info.num_classes).max()) if label_mode == "hard" and len(labels) else (
        len(images) // info.num_classes if label_mode == "soft" else 0)
    imported = {"format": opts.format, "source": str(src), "files": source.files, "assumptions": assumptions,
                **({"notes": {k: v for k, v in source.notes.items() if not isinstance(v, torch.Tensor)}} if source.notes else {})}
    return DistilledSet(images=images, labels=labels, label_mode=label_mode, num_classes=info.num_classes,
                        dataset=info.name, ipc=ipc, method=opts.method or opts.format, space=space, learned_lr=lr,
                        extra={"imported": imported})


def _images_and_space(source: sources.Source, opts: ImportOptions, info: DatasetInfo, assumptions: dict[str, object],
                      dataset: ImageDataset | None) -> tuple[torch.Tensor, ImageSpace]:
    images = source.images
    want = (info.channels, *info.image_size)
    if images.dim() >= 1 and len(images) == 0:
        raise DDBenchError(f"{opts.format} source holds no images")
    if images.dim() != 4 or tuple(images.shape[1:]) != want:
        raise DDBenchError(f"images are {tuple(images.shape)}; {info.name} needs (N, {', '.join(map(str, want))}) "
                           "— is --dataset right?")
    dataset_space = ImageSpace(tuple(info.mean), tuple(info.std))
    if "mean" in source.notes and opts.normalize is None:  # a tensors file that states its space (ddbench's export)
        zca = None
        if "zca_transform" in source.notes:
            try:
                eps = float(source.notes.get("zca_eps", 0.1))
            except (TypeError, ValueError, RuntimeError):
                raise DDBenchError("the file's zca_eps is not a number") from None
            zca = ZCA(source.notes["zca_mean"].float(), source.notes["zca_transform"].float(), eps)
        space = ImageSpace(tuple(float(v) for v in source.notes["mean"]), tuple(float(v) for v in source.notes["std"]), zca)
        assumptions["normalisation"] = "as stated in the file"
        return images.float(), space
    if images.dtype == torch.uint8:  # pixels: normalised as ddbench normalises its own real images
        space, described = resolve(opts.normalize or "dataset", info.name, info.channels, dataset_space)
        assumptions["normalisation"] = f"uint8 pixels mapped into {described}"
        return space.from_uint8(images), space
    if not images.is_floating_point():
        raise DDBenchError(f"images are {images.dtype}; expected float (normalised or [0, 1]) or uint8 pixels")
    images = images.float()
    if opts.zca:
        if not FORMATS.get(opts.format).zca_possible:
            raise DDBenchError(f"--zca: {opts.format} sets are never saved in ZCA space")
        # MTT's --zca: ToTensor only (pixels in [0, 1]), then kornia ZCAWhitening (eps 0.1) fitted on the training set
        _check_whitened(images)
        if dataset is None:
            log.info("%s: reading the training split for the ZCA fit (--zca)", info.name)
            dataset = load_dataset(opts.dataset, opts.data_root)
        zca = ZCA.fit(pixel_space(info.channels).from_uint8(dataset.x_train), eps=0.1)
        assumptions["normalisation"] = "pixels in [0, 1] (ToTensor only), then ZCA"
        assumptions["zca"] = "fitted on the whole training set, eps 0.1 (MTT/DATM --zca)"
        p = pixel_space(info.channels)
        return images, ImageSpace(p.mean, p.std, zca)
    preset = opts.normalize or FORMATS.get(opts.format).default_preset
    space, described = resolve(preset, info.name, info.channels, dataset_space)
    assumptions["normalisation"] = described
    if not _check_range(images, preset, space):  # [0, 1] pixels spread narrowly too: only normalised images are checked
        _check_not_whitened(images, opts)
    return images, space


def _check_range(images: torch.Tensor, preset: str, space: ImageSpace) -> bool:
    """One line when the values cannot be in the preset's space; returns whether the space is plain pixels."""
    lo, hi = float(images.min()), float(images.max())
    hint = "pass --normalize mtt|dc|mkdt|dataset|pixels|MEAN,...:STD,..."
    if lo >= 0 and 2.0 < hi <= 255.0:
        raise DDBenchError(f"image values lie in [{lo:.3g}, {hi:.3g}]: pixels in [0, 255]? Save them as uint8, or divide by 255 "
                           f"and {hint}")
    pixels = preset == PIXELS or all(m == 0 for m in space.mean) and all(s == 1 for s in space.std)
    if pixels and (lo < -0.01 or hi > 1.01):
        raise DDBenchError(f"image values lie in [{lo:.3g}, {hi:.3g}], not [0, 1] as pixels: already normalised or ZCA-whitened "
                           f"(--zca)? {hint}")
    if not pixels and lo >= 0 and hi <= 1.0:
        raise DDBenchError(f"image values lie in [{lo:.3g}, {hi:.3g}]: pixels in [0, 1], not normalised as the preset "
                           f"expects? {hint}")
    return pixels


def neighbour_correlation(images: torch.Tensor) -> float:
    """Correlation of horizontally adjacent pixels over the set (reported beside the spread)."""
    a, b = images[..., :, :-1].reshape(-1).double(), images[..., :, 1:].reshape(-1).double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))


def _check_not_whitened(images: torch.Tensor, opts: ImportOptions) -> None:
    """Normalised images spread with a std near 1; MTT's ZCA space (eps 0.1 on [0, 1] pixels) near 0.2-0.35
    (measured: CIFAR-10 1.25 vs 0.24, MNIST 0.98 vs 0.35). [0, 1] pixels, the other low spread, failed the range check."""
    spread = float(images.std())
    if spread < WHITENED_STD:
        zca = " If the source ran with --zca, pass --zca." if FORMATS.get(opts.format).zca_possible else ""
        raise DDBenchError(f"the images look ZCA-whitened (pixel std {spread:.2f}, neighbour correlation "
                           f"{neighbour_correlation(images):.2f}; normalised images spread with std near 1).{zca} "
                           "Evaluated in the wrong space they would score noise.")


def _check_whitened(images: torch.Tensor) -> None:
    if float(images.min()) >= -0.01:  # ZCA output is centred: it always has negative values
        raise DDBenchError(f"--zca, but no image value is negative (min {float(images.min()):.2f}): these look like pixels, "
                           "not ZCA-whitened images; drop --zca")


def _labels(source: sources.Source, info: DatasetInfo, assumptions: dict[str, object]) -> tuple[torch.Tensor, str]:
    labels, kind, k = source.labels, source.labels_kind, info.num_classes
    n = len(source.images)
    if kind == "none" or labels is None:
        return torch.zeros(n, 0), "none"
    if len(labels) != n:
        raise DDBenchError(f"{len(labels)} labels for {n} images")
    if kind == "targets":
        if labels.dim() != 2:
            raise DDBenchError(f"MKDT targets must be (N, D), got {tuple(labels.shape)}")
        return labels.float(), "regression"
    if kind == "hard":
        if labels.is_floating_point() and labels.dim() == 2:
            raise DDBenchError("the labels are (N, K) floats: soft labels? use --format datm or tensors")
        labels = labels.reshape(-1).long()
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise DDBenchError(f"labels run from {int(labels.min())} to {int(labels.max())}; {info.name} has {k} classes "
                               "— is --dataset right?")
        return labels, "hard"
    if labels.dim() != 2 or labels.shape[1] != k:
        raise DDBenchError(f"soft labels are {tuple(labels.shape)}; {info.name} needs (N, {k}) — is --dataset right?")
    if kind == "logits":
        assumptions["labels"] = "softmax of the stored logits (DATM's SoftCrossEntropy)"
        return torch.softmax(labels.float(), dim=1), "soft"
    return labels.float(), "soft"


def _learned_lr(source: sources.Source, opts: ImportOptions, assumptions: dict[str, object]) -> float | None:
    if opts.lr is not None:
        if opts.lr == "card":
            assumptions["lr"] = "none given: the card's lr"
            return None
        try:
            value = float(opts.lr)
        except ValueError:
            raise DDBenchError(f"--lr '{opts.lr}': give a number, or 'card' for the card's own lr") from None
        assumptions["lr"] = f"{value:g} (given)"
        return value
    if not FORMATS.get(opts.format).saves_lr:
        raise DDBenchError(f"{opts.format.upper()} never saves its learned lr (only logs it): pass --lr VALUE from the run's log, "
                           "or --lr card")
    if source.lr is not None:
        assumptions["lr"] = f"{source.lr:g} (from the files)"
    return source.lr
