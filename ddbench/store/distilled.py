"""The distilled-set format: one self-describing .safetensors file, loaded without executing pickles.

Tensors: `images` (N, C, H, W) float32 in the space the manifest names, `labels` ((N,) int64 for
hard labels, (N, K) float32 for soft labels or regression targets), for a whitened set
`zca_mean` / `zca_transform`, and a method's own tensors under `aux.<name>` (e.g. DD's per-step
learning rates and fixed initialisation). The JSON manifest in the file's metadata carries everything else:
label mode, normalisation, learned lr, IPC, source dataset, method and config, seed, code version.
"""
from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ddbench.core.errors import DDBenchError
from ddbench.core.paths import atomic_path, check_input_file
from ddbench.core.provenance import code_version
from ddbench.data.space import ZCA, ImageSpace
from ddbench.store.rows import LABEL_MODES, LabelMode, json_safe  # noqa: F401  (LABEL_MODES: part of this module's interface)

FORMAT = "ddbench-distilled-set"
FORMAT_VERSION = 1
MANIFEST_KEY = "ddbench_manifest"
MAX_MANIFEST_BYTES = 1 << 20  # a manifest is provenance, not payload
MAX_CONFIG_BYTES = 16 << 10  # method_config is copied into every result row
MAX_ABS_PIXEL = 1e4  # normalised images live within about ±10; far beyond is a broken set, not a distilled one
MAX_NAME = 200  # a method name is shown in every table and copied into every row
MAX_LEARNED_LR = 10.0  # learned step sizes in the field are 1e-4 .. 1; past 10 training only diverges

# Manifest fields and the JSON types they must have (None allowed where the value may be absent).
_MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "label_mode": (str,), "num_classes": (int,), "dataset": (str,), "ipc": (int,), "method": (str,),
    "method_config": (dict,), "learned_lr": (int, float, type(None)), "distill_seed": (int, type(None)),
    "extra": (dict,), "normalize": (dict,), "code_version": (str,), "created": (str,),
}


@dataclass
class DistilledSet:
    images: torch.Tensor
    labels: torch.Tensor
    label_mode: LabelMode  # "none": images only (self-supervised pre-training)
    num_classes: int
    dataset: str
    ipc: int
    method: str
    space: ImageSpace
    method_config: dict[str, Any] = field(default_factory=dict)
    learned_lr: float | None = None
    distill_seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    aux: dict[str, torch.Tensor] = field(default_factory=dict)
    code_version: str = ""
    created: str = ""

    def __post_init__(self) -> None:
        self.validate()
        if not self.code_version:
            self.code_version = code_version()
        if not self.created:
            self.created = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    def validate(self) -> None:
        """Refuse inconsistent sets with one clear message."""
        if self.images.dim() != 4:
            raise DDBenchError(f"distilled set: images must be (N, C, H, W), got shape {tuple(self.images.shape)}")
        n = len(self.images)
        if not self.images.is_floating_point():
            raise DDBenchError(f"distilled set: images are {self.images.dtype}, not floating point: a set holds images in its "
                               "normalised space (import uint8 pixels with `ddbench import`, which maps them)")
        if not isinstance(self.method, str) or not 0 < len(self.method) <= MAX_NAME:
            raise DDBenchError(f"distilled set: the method name must be 1..{MAX_NAME} characters, got "
                               f"{len(self.method) if isinstance(self.method, str) else type(self.method).__name__}")
        if self.label_mode not in ("hard", "soft", "regression", "none"):
            raise DDBenchError(f"distilled set: label_mode must be hard, soft, regression or none, got '{self.label_mode}'")
        if self.label_mode == "hard":
            if self.labels.shape != (n,) or self.labels.dtype != torch.int64:
                raise DDBenchError(f"distilled set: hard labels must be int64 (N,) = ({n},), "
                                   f"got {self.labels.dtype} {tuple(self.labels.shape)}")
            if n and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
                raise DDBenchError(f"distilled set: labels must lie in [0, {self.num_classes})")
        elif self.label_mode == "none":
            if self.labels.shape != (n, 0):
                raise DDBenchError(f"distilled set: an images-only set has labels of shape (N, 0), got {tuple(self.labels.shape)}")
        elif self.labels.dim() != 2 or len(self.labels) != n:
            raise DDBenchError(f"distilled set: {self.label_mode} labels must be (N, K) with N = {n}, got {tuple(self.labels.shape)}")
        if len(self.space.mean) != self.images.shape[1] or len(self.space.std) != self.images.shape[1]:
            raise DDBenchError(f"distilled set: normalisation has {len(self.space.mean)} channels, images have {self.images.shape[1]}")
        if not torch.isfinite(self.images).all():
            raise DDBenchError("distilled set: images contain NaN or infinite values")
        if n and float(self.images.abs().max()) > MAX_ABS_PIXEL:
            raise DDBenchError(f"distilled set: image values reach {float(self.images.abs().max()):.3g}; normalised images "
                               f"lie within ±{MAX_ABS_PIXEL:g} (is the set in the wrong space, or broken?)")
        if self.label_mode in ("soft", "regression") and not torch.isfinite(self.labels).all():
            raise DDBenchError(f"distilled set: {self.label_mode} labels contain NaN or infinite values")
        d = math.prod(self.images.shape[1:])  # values per image
        if self.space.zca is not None and (tuple(self.space.zca.transform.shape) != (d, d) or tuple(self.space.zca.mean.shape) != (d,)):
            raise DDBenchError(f"distilled set: the ZCA transform is {tuple(self.space.zca.transform.shape)} with mean "
                               f"{tuple(self.space.zca.mean.shape)}; images of {d} values need ({d}, {d}) and ({d},)")
        if self.space.zca is not None and not (torch.isfinite(self.space.zca.transform).all()
                                               and torch.isfinite(self.space.zca.mean).all()):
            raise DDBenchError("distilled set: the ZCA transform contains NaN or infinite values")
        if not all(math.isfinite(v) for v in (*self.space.mean, *self.space.std)) or min(self.space.std) <= 0:
            raise DDBenchError("distilled set: normalisation mean/std must be finite, std positive")
        if self.learned_lr is not None and not (math.isfinite(self.learned_lr) and 0 < self.learned_lr <= MAX_LEARNED_LR):
            raise DDBenchError(f"distilled set: learned lr must lie in (0, {MAX_LEARNED_LR:g}], got {self.learned_lr}")
        for name, tensor in self.aux.items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise DDBenchError(f"distilled set: aux tensor '{name}' contains NaN or infinite values")
        if len(json.dumps(self.method_config, default=str)) > MAX_CONFIG_BYTES:
            raise DDBenchError(f"distilled set: method_config exceeds {MAX_CONFIG_BYTES // 1024} KiB; it is copied into every row")

    # --- identity -------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        return json_safe({
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "label_mode": self.label_mode, "num_classes": self.num_classes,
            "dataset": self.dataset, "ipc": self.ipc, "method": self.method,
            "method_config": self.method_config, "learned_lr": self.learned_lr,
            "distill_seed": self.distill_seed, "extra": self.extra,
            "normalize": {"mean": list(self.space.mean), "std": list(self.space.std)},
            "zca": None if self.space.zca is None else {"eps": self.space.zca.eps},
            "code_version": self.code_version, "created": self.created,
            "python": platform.python_version(), "torch": torch.__version__,
        })

    def storage(self) -> dict[str, Any]:
        """What the set weighs as stored (bytes of images, labels, auxiliary tensors such as DD's step sizes, and a
        ZCA transform), against the bytes of as many real uint8 images as the set's image budget allows."""
        def nbytes(t: torch.Tensor) -> int:
            return t.numel() * t.element_size()

        c, h, w = self.image_shape
        budget = self.ipc * self.num_classes if self.ipc else len(self.images)
        out = {"image_bytes": nbytes(self.images), "label_bytes": nbytes(self.labels),
               "aux_bytes": sum(nbytes(t) for t in self.aux.values()),
               "zca_bytes": nbytes(self.space.zca.transform) + nbytes(self.space.zca.mean) if self.space.zca is not None else 0,
               "real_bytes": budget * c * h * w}
        out["total_bytes"] = out["image_bytes"] + out["label_bytes"] + out["aux_bytes"]
        out["labels_outweigh_images"] = out["label_bytes"] > out["image_bytes"]
        return out

    @property
    def set_id(self) -> str:
        """A content hash of what training sees: images, labels, learned lr and the image space."""
        h = hashlib.sha256()
        for t in (self.images, self.labels):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        h.update(json.dumps([self.label_mode, self.learned_lr, self.space.mean, self.space.std]).encode())
        if self.space.zca is not None:
            h.update(self.space.zca.transform.cpu().numpy().tobytes())
        for name in sorted(self.aux):
            h.update(name.encode())
            h.update(self.aux[name].detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:12]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    # --- files ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tensors = {"images": self.images.detach().cpu().float().contiguous(), "labels": self.labels.detach().cpu().contiguous()}
        if self.space.zca is not None:
            tensors["zca_mean"] = self.space.zca.mean.cpu().contiguous()
            tensors["zca_transform"] = self.space.zca.transform.cpu().contiguous()
        tensors.update({f"aux.{k}": v.detach().cpu().contiguous() for k, v in self.aux.items()})
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={MANIFEST_KEY: json.dumps(self.manifest(), allow_nan=False)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> "DistilledSet":
        path = check_input_file(path, "distilled set")
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
            text = meta[MANIFEST_KEY]
            if len(text) > MAX_MANIFEST_BYTES:
                raise DDBenchError(f"{path}: its manifest is {len(text) // 1024} KiB; a ddbench manifest is at most "
                                   f"{MAX_MANIFEST_BYTES // 1024} KiB")
            tensors = load_file(str(path))
            manifest = json.loads(text, parse_constant=lambda _: None)  # NaN / Infinity: not JSON; read as absent
        except PermissionError:
            raise DDBenchError(f"cannot read {path}: permission denied") from None
        except (SafetensorError, OSError, KeyError, ValueError) as exc:
            raise DDBenchError(f"{path} is not a readable ddbench distilled set ({type(exc).__name__}: {exc})") from None
        if not isinstance(manifest, dict):
            raise DDBenchError(f"{path}: the manifest is not a JSON object")
        if manifest.get("format") != FORMAT:
            raise DDBenchError(f"{path}: manifest format is '{manifest.get('format')}', expected '{FORMAT}'")
        if manifest.get("format_version", 0) > FORMAT_VERSION:
            raise DDBenchError(f"{path} was written by a newer ddbench (format {manifest['format_version']}); upgrade ddbench")
        for key, types in _MANIFEST_TYPES.items():
            if key in manifest and (not isinstance(manifest[key], types) or isinstance(manifest[key], bool) and bool not in types):
                want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
                raise DDBenchError(f"{path}: manifest field '{key}' must be {want}, got {type(manifest[key]).__name__}")
        norm = manifest.get("normalize", {})
        if not all(isinstance(norm.get(k), list) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                          for v in norm[k]) for k in ("mean", "std")):
            raise DDBenchError(f"{path}: manifest 'normalize' must hold numeric lists 'mean' and 'std'")
        try:
            zca = None
            if manifest.get("zca"):
                zca = ZCA(tensors["zca_mean"], tensors["zca_transform"], float(manifest["zca"]["eps"]))
            space = ImageSpace(tuple(manifest["normalize"]["mean"]), tuple(manifest["normalize"]["std"]), zca)
            return cls(
                images=tensors["images"].float(), labels=tensors["labels"], label_mode=manifest["label_mode"],
                num_classes=int(manifest["num_classes"]), dataset=manifest["dataset"], ipc=int(manifest["ipc"]),
                method=manifest["method"], space=space, method_config=manifest.get("method_config", {}),
                learned_lr=manifest.get("learned_lr"), distill_seed=manifest.get("distill_seed"),
                extra=manifest.get("extra", {}), code_version=manifest.get("code_version", "unknown"),
                aux={k[len("aux."):]: v for k, v in tensors.items() if k.startswith("aux.")},
                created=manifest.get("created", "unknown"),
            )
        except KeyError as exc:
            raise DDBenchError(f"{path}: the set lacks {exc}; it is incomplete") from None
        except (TypeError, ValueError) as exc:
            raise DDBenchError(f"{path}: the manifest is malformed ({exc})") from None
