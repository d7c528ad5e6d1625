"""Readers for the file layouts other codebases save distilled sets in. Tensors are read with
`torch.load(weights_only=True)` (or safetensors) and images with Pillow; nothing is ever unpickled
otherwise, so a file carrying code is refused before it can run."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddbench.core.errors import DDBenchError
from ddbench.core.paths import check_input_file, describe_kind
from ddbench.data.base import to_nchw

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
MAX_IMAGE_PIXELS = 1024 * 1024  # headers are read before pixels: a file claiming more is refused without decoding it


@dataclass
class Source:
    """What a layout holds, before any interpretation: images as stored, labels as stored, files read."""

    images: torch.Tensor
    labels: torch.Tensor | None  # int (N,), float (N, K) or None (images only)
    labels_kind: str  # "hard", "logits", "probs", "targets" (MKDT regression) or "none"
    lr: float | None = None
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256
    notes: dict[str, Any] = field(default_factory=dict)  # e.g. the space a tensors file declares


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_tensors(path: Path) -> Any:
    """A tensor file's contents (tensors, lists, dicts, numbers), refusing anything that needs code to unpickle."""
    check_input_file(path, "source file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # noqa: BLE001  (any parse failure is the file's fault)
            raise DDBenchError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0][:120]})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (UnpicklingError, RuntimeError, EOFError, zip errors ...)
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise DDBenchError(f"{path}: refused — not a plain tensor file (torch.load(weights_only=True): {first})") from None


def _tensor(value: Any, path: Path, what: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise DDBenchError(f"{path}: expected {what} as a tensor, found {type(value).__name__}")
    return value


def _scalar(value: Any, path: Path) -> float:
    value = float(value.reshape(-1)[0]) if isinstance(value, torch.Tensor) and value.numel() == 1 else value
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise DDBenchError(f"{path}: expected a learning rate (one number), found {type(value).__name__}")
    return float(value)


def _pick(folder: Path, stem: str, iteration: str | None) -> Path:
    """`<stem>_best.pt`, or `<stem>_<iteration>.pt`, or the highest iteration saved."""
    if iteration is not None:
        path = folder / f"{stem}_{iteration}.pt"
        if not path.is_file():
            raise DDBenchError(f"{folder}: no {path.name}")
        return path
    if (folder / f"{stem}_best.pt").is_file():
        return folder / f"{stem}_best.pt"
    numbered = sorted((int(m.group(1)), p) for p in folder.glob(f"{stem}_*.pt") if (m := re.fullmatch(rf"{stem}_(\d+)\.pt", p.name)))
    if not numbered:
        raise DDBenchError(f"{folder}: no {stem}_best.pt or {stem}_<iteration>.pt")
    return numbered[-1][1]


def _read(paths: list[Path], files: dict[str, str]) -> list[Any]:
    out = []
    for path in paths:
        files[path.name] = sha256(path)
        out.append(load_tensors(path))
    return out


def read_mtt(src: Path, iteration: str | None, soft: bool) -> Source:
    """MTT (and DATM with `soft`): images_best.pt + labels_best.pt (+ lr_best.pt), or images_<it>.pt …;
    Tiny-ImageNet IPC 50 as images_best_0..4.pt, concatenated."""
    if not src.is_dir():
        raise DDBenchError(f"{src}: the mtt/datm layout is a folder holding images_best.pt and labels_best.pt")
    files: dict[str, str] = {}
    parts = sorted(src.glob("images_best_*.pt"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if iteration is None and parts and not (src / "images_best.pt").is_file():
        images = torch.cat([_tensor(t, p, "images") for t, p in zip(_read(parts, files), parts)])
        label_paths = [src / p.name.replace("images_", "labels_") for p in parts]
        labels = torch.cat([_tensor(t, p, "labels") for t, p in zip(_read(label_paths, files), label_paths)])
    else:
        img_path = _pick(src, "images", iteration)
        lab_path = src / img_path.name.replace("images_", "labels_")
        images, labels = (_tensor(t, p, w) for t, p, w in zip(_read([img_path, lab_path], files), (img_path, lab_path),
                                                            ("images", "labels")))
    lr = None
    lr_path = src / "lr_best.pt" if iteration is None else src / f"lr_{iteration}.pt"
    if soft and lr_path.is_file():
        lr = _scalar(_read([lr_path], files)[0], lr_path)
    kind = "logits" if soft and labels.is_floating_point() and labels.dim() == 2 else "hard"
    return Source(images, labels, kind, lr, files)


def read_dc(src: Path, experiment: int) -> Source:
    """DC/DSA/DM: res_<DC|DSA|DM>_<dataset>_<model>_<ipc>ipc.pt, a dict whose `data` lists [images, labels] per experiment."""
    files: dict[str, str] = {}
    (blob,) = _read([src], files)
    data = blob.get("data") if isinstance(blob, dict) else None
    if not isinstance(data, (list, tuple)) or not data:
        raise DDBenchError(f"{src}: not a DC/DSA/DM result file (expected a dict whose 'data' lists [images, labels])")
    if not 0 <= experiment < len(data):
        raise DDBenchError(f"{src}: --experiment {experiment} is out of range; the file holds {len(data)} experiment(s)")
    pair = data[experiment]
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise DDBenchError(f"{src}: experiment {experiment} is not an [images, labels] pair")
    return Source(_tensor(pair[0], src, "images"), _tensor(pair[1], src, "labels"), "hard", None, files,
                  {"experiment": experiment, "experiments": len(data)})


def read_mkdt(src: Path, iteration: str | None) -> Source:
    """MKDT: images_<it>.pt, labels_<it>.pt (teacher representation targets), synlr_<it>.pt; the highest it by default."""
    if not src.is_dir():
        raise DDBenchError(f"{src}: the mkdt layout is a folder holding images_<it>.pt, labels_<it>.pt and synlr_<it>.pt")
    files: dict[str, str] = {}
    img_path = _pick(src, "images", iteration)
    suffix = img_path.name[len("images_"):]
    lab_path, lr_path = src / f"labels_{suffix}", src / f"synlr_{suffix}"
    images, labels = (_tensor(t, p, w) for t, p, w in zip(_read([img_path, lab_path], files), (img_path, lab_path),
                                                        ("images", "targets")))
    lr = _scalar(_read([lr_path], files)[0], lr_path) if lr_path.is_file() else None
    return Source(images, labels, "targets", lr, files, {"iteration": suffix[:-3]})


def read_tensors(src: Path) -> Source:
    """A .pt/.safetensors file with `images`, optional `labels` and `lr` (or `syn_lr`), and optionally the space
    (`mean`, `std`, `zca_mean`, `zca_transform`, `zca_eps`) — what `ddbench export --format tensors` writes; or a
    folder with images.pt, labels.pt and lr.pt / syn_lr.pt (DD-Ranking's layout)."""
    files: dict[str, str] = {}
    if src.is_dir():
        blob: dict[str, Any] = {}
        for name in ("images", "labels", "lr", "syn_lr"):
            if (src / f"{name}.pt").is_file():
                blob[name] = _read([src / f"{name}.pt"], files)[0]
    else:
        (blob,) = _read([src], files)
    if not isinstance(blob, dict) or "images" not in blob:
        raise DDBenchError(f"{src}: a tensors file is a dict with 'images' (and 'labels', 'lr'); see README")
    images = _tensor(blob["images"], src, "images")
    labels = _tensor(blob["labels"], src, "labels") if blob.get("labels") is not None else None
    lr_value = blob.get("lr", blob.get("syn_lr"))
    lr = _scalar(lr_value, src) if lr_value is not None else None
    if labels is None:
        kind = "none"
    elif not labels.is_floating_point():
        kind = "hard"
    else:
        kind = str(blob.get("label_mode", "")) or ("probs" if _is_distribution(labels) else "logits")
        kind = {"soft": "probs", "regression": "targets"}.get(kind, kind)
    notes = {k: blob[k] for k in ("mean", "std", "zca_mean", "zca_transform", "zca_eps") if k in blob}
    for key in ("mean", "std"):
        if key in notes:
            value = notes[key]
            if not isinstance(value, (torch.Tensor, list, tuple)) or (isinstance(value, torch.Tensor) and value.dim() != 1) or \
                    not all(isinstance(v, (int, float)) or isinstance(v, torch.Tensor) and v.numel() == 1 for v in value):
                raise DDBenchError(f"{src}: '{key}' must be a list or 1-d tensor of numbers (one per channel), got "
                                   f"{type(value).__name__}")
    for key in ("zca_mean", "zca_transform"):
        if key in notes and not isinstance(notes[key], torch.Tensor):
            raise DDBenchError(f"{src}: '{key}' must be a tensor, got {type(notes[key]).__name__}")
    return Source(images, labels, kind, lr, files, notes)


def _is_distribution(labels: torch.Tensor) -> bool:
    return labels.dim() == 2 and bool((labels >= 0).all()) and bool(torch.allclose(labels.sum(1), torch.ones(len(labels)), atol=1e-3))


def read_folder(src: Path, class_names: list[str]) -> Source:
    """One sub-folder per class (named as the dataset's classes, or 0..K-1 / any names sorted), images as pixels."""
    from PIL import Image

    if not src.is_dir():
        raise DDBenchError(f"{src}: the folder layout is a directory with one sub-folder of images per class")
    folders = sorted(p for p in src.iterdir() if p.is_dir())
    if not folders:
        raise DDBenchError(f"{src}: no class sub-folders")
    names = [p.name for p in folders]
    if set(names) <= set(class_names):
        index = {n: class_names.index(n) for n in names}
    elif all(n.isdigit() for n in names):
        index = {n: int(n) for n in names}
    else:
        index = {n: i for i, n in enumerate(names)}  # sorted names, as torchvision's ImageFolder does
    files: dict[str, str] = {}
    images, labels = [], []
    for folder in folders:
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            kind = describe_kind(path)
            if kind != "a file":  # a named pipe would block the read forever; a directory or a link loop cannot be read
                raise DDBenchError(f"{path}: is {kind}, not an image file")
            files[f"{folder.name}/{path.name}"] = sha256(path)
            try:
                with Image.open(path) as im:
                    if im.width * im.height > MAX_IMAGE_PIXELS:
                        raise DDBenchError(f"{path}: {im.width}×{im.height} pixels; a distilled image is at most "
                                           f"{MAX_IMAGE_PIXELS} pixels")
                    array = np.asarray(im.convert("L" if im.mode in ("L", "I;16", "1") else "RGB"))
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                raise DDBenchError(f"{path}: not a readable image ({str(exc)[:160]})") from None
            images.append(array.reshape(array.shape[0], array.shape[1], -1))
            labels.append(index[folder.name])
    if not images:
        raise DDBenchError(f"{src}: the class folders hold no images ({', '.join(IMAGE_SUFFIXES)})")
    if len({tuple(t.shape) for t in images}) != 1:
        raise DDBenchError(f"{src}: images differ in size or channels; resize them to the dataset's shape first")
    return Source(to_nchw(np.stack(images)), torch.tensor(labels), "hard", None, files, {"class_folders": names})


# The readers the import formats name (ddbench.interop.formats): (source, ImportOptions, class names) -> Source.
def mtt_reader(src: Path, opts: Any, class_names: list[str]) -> Source:
    return read_mtt(src, opts.iteration, soft=False)


def datm_reader(src: Path, opts: Any, class_names: list[str]) -> Source:
    return read_mtt(src, opts.iteration, soft=True)


def dc_reader(src: Path, opts: Any, class_names: list[str]) -> Source:
    return read_dc(src, opts.experiment)


def mkdt_reader(src: Path, opts: Any, class_names: list[str]) -> Source:
    return read_mkdt(src, opts.iteration)


def tensors_reader(src: Path, opts: Any, class_names: list[str]) -> Source:
    return read_tensors(src)


def folder_reader(src: Path, opts: Any, class_names: list[str]) -> Source:
    return read_folder(src, class_names)
