"""Write a ddbench set out in another codebase's layout."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ddbench.core.errors import DDBenchError
from ddbench.core.paths import atomic_write
from ddbench.interop.formats import EXPORT_FORMATS
from ddbench.store.distilled import DistilledSet


def _save(obj: object, path: Path) -> None:
    with atomic_write(path, "wb") as handle:
        torch.save(obj, handle)


def export_set(dset: DistilledSet, fmt: str, out: str | Path) -> list[Path]:
    """mtt: images_best.pt / labels_best.pt (+ lr_best.pt) in the set's own space; tensors: one .pt holding the
    images, labels, lr and the space (imports back to the same set id); folder: PNGs per class, in pixel space."""
    out = Path(out)
    if fmt == "tensors":
        path = out if out.suffix == ".pt" else out / "set.pt"
        blob = {"images": dset.images, "labels": dset.labels, "label_mode": dset.label_mode,
                "mean": torch.tensor(dset.space.mean, dtype=torch.float64), "std": torch.tensor(dset.space.std, dtype=torch.float64)}
        if dset.learned_lr is not None:
            blob["lr"] = torch.tensor(dset.learned_lr, dtype=torch.float64)
        if dset.space.zca is not None:
            blob.update(zca_mean=dset.space.zca.mean, zca_transform=dset.space.zca.transform,
                        zca_eps=torch.tensor(dset.space.zca.eps, dtype=torch.float64))
        _save(blob, path)
        return [path]
    if fmt == "mtt":
        if dset.label_mode != "hard":
            raise DDBenchError(f"MTT's layout holds hard labels; this set has {dset.label_mode} labels (export --format tensors)")
        written = [out / "images_best.pt", out / "labels_best.pt"]
        _save(dset.images.clone(), written[0])
        _save(dset.labels.long().clone(), written[1])
        if dset.learned_lr is not None:  # DATM's name; MTT itself never writes the lr
            written.append(out / "lr_best.pt")
            _save(torch.tensor(dset.learned_lr), written[-1])
        note = out / "ddbench-export.json"
        with atomic_write(note, "w") as handle:
            json.dump({"set_id": dset.set_id, "dataset": dset.dataset, "normalize": {"mean": dset.space.mean, "std": dset.space.std},
                       "zca": dset.space.zca is not None, "learned_lr": dset.learned_lr}, handle, indent=1)
        return [*written, note]
    if fmt == "folder":
        return _export_folder(dset, out)
    raise DDBenchError(f"unknown export --format '{fmt}'; one of {', '.join(EXPORT_FORMATS)}")


def _export_folder(dset: DistilledSet, out: Path) -> list[Path]:
    from PIL import Image

    if dset.label_mode != "hard":
        raise DDBenchError(f"an image folder holds one class per image; this set has {dset.label_mode} labels")
    pixels = (dset.space.to_pixels(dset.images) * 255.0).round().clamp(0, 255).to(torch.uint8)
    written = []
    for i, (image, label) in enumerate(zip(pixels, dset.labels.tolist())):
        path = out / f"{label:04d}" / f"{i:05d}.png"
        array = image.permute(1, 2, 0).numpy()
        with atomic_write(path, "wb") as handle:
            Image.fromarray(np.ascontiguousarray(array[..., 0] if array.shape[2] == 1 else array)).save(handle, format="PNG")
        written.append(path)
    return written
