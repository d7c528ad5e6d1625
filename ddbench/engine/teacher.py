"""MKDT's teacher: a ResNet-18 trained with Barlow Twins on the source training images, and its
representations of every training image (the 512-d pooled backbone feature of the un-augmented,
normalised image), both cached by content.

The stem is that of the checkpoints the paper used: a 3×3, stride-1 conv (padding 2 by default)
and no max-pool at any resolution (64 px included, as the authors); the classifier is removed. A user checkpoint replaces training:
`--cfg teacher=PATH` takes a safetensors file or a `torch.load(weights_only=True)` state dict,
either in this network's keys or in the Barlow Twins `f.<i>.` layout of KRR-ST / mix-bt
checkpoints (conv1, bn1, relu, layer1-4, avgpool: their backbone has no max-pool at any size).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import pickle
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ddbench.core.errors import DDBenchError
from ddbench.core.paths import atomic_path, check_input_file
from ddbench.data import ImageDataset
from ddbench.data.space import ImageSpace
from ddbench.engine.barlow import BarlowRecipe, train_barlow
from ddbench.engine.realtrain import embed, features
from ddbench.models import create_network

log = logging.getLogger(__name__)


TEACHER_VERSION = 2  # 2: no max-pool at any resolution; Barlow Twins views on pixels (mix-bt's recipe)


def teacher_network(in_chans: int, img_size: int, stem_padding: int = 2) -> nn.Module:
    """ResNet-18 without its classifier; 3×3 stride-1 stem and no max-pool at any resolution, as the
    authors' (and KRR-ST's / mix-bt's) networks, which leave the max-pool out of their backbone."""
    import timm  # the model zoo loads only when a teacher is built (names are checked from ddbench.models' index)

    model = timm.create_model("resnet18", pretrained=False, num_classes=0, in_chans=in_chans)
    model.conv1 = nn.Conv2d(in_chans, 64, kernel_size=3, stride=1, padding=stem_padding, bias=False)
    model.maxpool = nn.Identity()
    return model


_BARLOW_ORDER = ["conv1", "bn1", "act1", "layer1", "layer2", "layer3", "layer4"]  # mix-bt's `f` (no max-pool, no fc)


def _from_barlow_layout(state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Map `f.<i>.` keys (mix-bt's Sequential of resnet children without max-pool and fc) to this network's names."""
    out = {}
    for key, value in state.items():
        if not key.startswith("f."):
            continue  # the projector `g.` is not part of the representation
        parts = key.split(".", 2)
        if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) >= len(_BARLOW_ORDER) + 1:
            raise DDBenchError(f"teacher checkpoint {path}: key '{key}' does not follow the Barlow Twins `f.<i>.<name>` "
                               f"layout of a ResNet-18 (indices 0..{len(_BARLOW_ORDER)})")
        index = int(parts[1])
        if index == len(_BARLOW_ORDER):
            continue  # the average pool: no parameters
        out[f"{_BARLOW_ORDER[index]}.{parts[2]}"] = value
    return out


def read_teacher_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A teacher checkpoint's state dict, refused with one line unless it is a regular file of plain tensors (checked
    before any work: `ddbench evaluate --teacher` calls it first)."""
    path = check_input_file(path, "teacher checkpoint")
    try:
        state = load_file(str(path)) if path.suffix == ".safetensors" else torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise DDBenchError(f"cannot read teacher checkpoint {path}: permission denied") from None
    except pickle.UnpicklingError:  # torch's message runs to many lines and advises weights_only=False: never
        raise DDBenchError(f"teacher checkpoint {path} holds pickled objects other than tensors; ddbench loads weights "
                           "only (a safetensors file or a plain state dict) and never runs pickled code") from None
    except Exception as exc:  # any unreadable file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DDBenchError(f"teacher checkpoint {path} cannot be read ({type(exc).__name__}: {first})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise DDBenchError(f"teacher checkpoint {path} is not a state dict (names → tensors)")
    return state


def load_teacher(path: str | Path, in_chans: int, img_size: int, stem_padding: int = 2) -> nn.Module:
    path = Path(path)
    state = read_teacher_state(path)
    model = teacher_network(in_chans, img_size, stem_padding)
    if any(k.startswith("f.") for k in state):
        state = _from_barlow_layout(state, path)
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "g."))}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise DDBenchError(f"teacher checkpoint {path} does not fit a ResNet-18 ({lines[-1] if lines else 'shape mismatch'})") from None
    missing = [k for k in missing if "num_batches_tracked" not in k]
    if missing or unexpected:
        raise DDBenchError(f"teacher checkpoint {path} does not fit a ResNet-18 "
                           f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model


@dataclasses.dataclass(frozen=True)
class TeacherSpec:
    arch: str = "resnet18"  # any other name: that ddbench/timm network's penultimate features
    stem_padding: int = 2
    checkpoint: str = ""  # a user checkpoint instead of training
    barlow: BarlowRecipe = BarlowRecipe()


def teacher_key(spec: TeacherSpec, train: ImageDataset, space: ImageSpace, seed: int) -> str:
    ident = [TEACHER_VERSION, train.name, train.fingerprint or train.source, int(train.x_train.shape[0]),
             dataclasses.asdict(spec), list(space.mean), list(space.std), seed]
    if spec.checkpoint:
        if not Path(spec.checkpoint).is_file():
            raise DDBenchError(f"teacher checkpoint {spec.checkpoint} does not exist")
        stat = Path(spec.checkpoint).stat()
        ident.append([str(Path(spec.checkpoint).resolve()), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


def teacher_representations(spec: TeacherSpec, train: ImageDataset, space: ImageSpace, seed: int, device: torch.device,
                            cache_dir: Path, progress: bool = True) -> tuple[torch.Tensor, str]:
    """(N, 512) representations of the training images and their content id; teacher and reps are cached."""
    key = teacher_key(spec, train, space, seed)
    folder = cache_dir / "teachers" / f"{train.name}-{key}"
    reps_path, weights_path = folder / "representations.safetensors", folder / "teacher.safetensors"
    if reps_path.is_file():
        log.info(f"reusing cached teacher representations ({reps_path})")
        return load_file(str(reps_path))["reps"], key
    channels, size = train.channels, train.image_size[0]
    x = space.from_uint8(train.x_train, device)

    def fresh() -> nn.Module:
        if spec.arch == "resnet18":
            return teacher_network(channels, size, spec.stem_padding)
        return create_network(spec.arch, 10, channels, train.image_size)

    if spec.checkpoint:
        model = load_teacher(spec.checkpoint, channels, size, spec.stem_padding).to(device)
        log.info(f"teacher: {spec.checkpoint}")
    elif weights_path.is_file():
        model = fresh()
        model.load_state_dict(load_file(str(weights_path)))
        model = model.to(device)
        log.info(f"reusing the cached teacher ({weights_path})")
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = fresh().to(device)
        model = train_barlow(model, features, x, spec.barlow, seed, space.mean, space.std, progress=progress,
                             desc=f"teacher: Barlow Twins on {train.name}")
        with atomic_path(weights_path) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    reps = embed(model, x).cpu().contiguous()
    with atomic_path(reps_path) as tmp:
        save_file({"reps": reps}, str(tmp))
    return reps, key
