"""Training a network on the full real training set, for methods that need one (coresets, forgetting).

The recipe defaults are DeepCore's selection defaults (SGD lr 0.1, Nesterov momentum 0.9, weight
decay 5e-4, batch 256, 40 epochs) with cosine annealing; no augmentation. Trained networks are
cached on disk by content (dataset, arch, recipe, seed), so herding and k-center on the same
card share one network.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from ddbench.core import clock
from ddbench.core.paths import atomic_path
from ddbench.data import ImageDataset
from ddbench.data.space import ImageSpace
from ddbench.engine.resume import RESUME_EVERY_S, ResumeFile, seconds_saved
from ddbench.engine.train import Streams, init_network

log = logging.getLogger(__name__)

BatchHook = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]  # (indices, logits, labels)

# The method options that configure the real-data network (shared by herding, k-center, forgetting).
SELECTION_OPTIONS = {"embed_arch": "", "embed_epochs": 40, "embed_lr": 0.1, "embed_batch": 256}


@dataclass(frozen=True)
class RealTrainRecipe:
    epochs: int = 40
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    cosine: bool = True


def selection_setup(cfg: dict, default_arch: str) -> tuple[str, "RealTrainRecipe"]:
    """(arch, recipe) from a method's SELECTION_OPTIONS; the arch defaults to the card's first."""
    recipe = RealTrainRecipe(epochs=cfg["embed_epochs"], lr=cfg["embed_lr"], batch_size=cfg["embed_batch"])
    return cfg["embed_arch"] or default_arch, recipe


def train_on_real(arch: str, train: ImageDataset, space: ImageSpace, recipe: RealTrainRecipe, seed: int,
                  device: torch.device, on_batch: BatchHook | None = None, progress: bool = True,
                  desc: str = "real-data network", resume: Path | None = None,
                  resume_every_s: float = RESUME_EVERY_S) -> nn.Module:
    """Train a fresh `arch` on all of `train` (images mapped into `space`); `on_batch` sees every batch.

    With `resume` (and no `on_batch`, whose own state could not be restored), the training state is saved there at
    the end of an epoch at most every `resume_every_s` seconds, and a later call with the same file starts from it: an
    interrupted run loses at most one save interval and ends with the network an uninterrupted run would have."""
    x = space.from_uint8(train.x_train, device)
    y = train.y_train.to(device)
    model = init_network(arch, seed, train.num_classes, train.channels, train.image_size).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          nesterov=recipe.nesterov and recipe.momentum > 0, weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(len(x) / recipe.batch_size)
    total = max(1, recipe.epochs * steps_per_epoch)
    streams = Streams.for_seed(seed, device)
    saver = ResumeFile(resume, resume_every_s) if resume is not None and on_batch is None else None
    first_epoch = saver.restore(model, opt, [streams.device], device)[0] if saver is not None else 0
    step = first_epoch * steps_per_epoch
    for epoch in tqdm(range(first_epoch, recipe.epochs), desc=desc, unit="ep", disable=not progress, leave=False,
                      initial=first_epoch, total=recipe.epochs):
        perm = torch.randperm(len(x), generator=streams.device, device=device)
        for lo in range(0, len(x), recipe.batch_size):
            idx = perm[lo : lo + recipe.batch_size]
            logits = model(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if on_batch is not None:
                on_batch(idx, logits.detach(), y[idx])
            step += 1
            if recipe.cosine:
                for group in opt.param_groups:
                    group["lr"] = 0.5 * recipe.lr * (1 + math.cos(math.pi * step / total))
        if saver is not None and epoch + 1 < recipe.epochs:
            saver.save_if_due(epoch + 1, model, opt, [streams.device])
    if saver is not None:
        saver.finish()
    return model.eval()


def _key(arch: str, train: ImageDataset, space: ImageSpace, recipe: RealTrainRecipe, seed: int) -> str:
    ident = [train.name, train.source, int(train.x_train.shape[0]), int(train.y_train.sum()), arch,
             dataclasses.asdict(recipe), seed, list(space.mean), list(space.std), space.zca is not None]
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


def real_network_path(arch: str, train: ImageDataset, space: ImageSpace, recipe: RealTrainRecipe, seed: int,
                      cache_dir: Path) -> Path:
    return cache_dir / "networks" / f"{train.name}-{arch}-{_key(arch, train, space, recipe, seed)}.safetensors"


def resume_path(network: Path) -> Path:
    """Where an interrupted training of `network` keeps the state it resumes from (beside the network)."""
    return network.with_name(network.stem + ".resume.pt")


def cached_real_network(arch: str, train: ImageDataset, space: ImageSpace, recipe: RealTrainRecipe, seed: int,
                        device: torch.device, cache_dir: Path, progress: bool = True) -> nn.Module:
    """train_on_real, reusing a network trained earlier with the same inputs."""
    path = real_network_path(arch, train, space, recipe, seed, cache_dir)
    model = init_network(arch, seed, train.num_classes, train.channels, train.image_size)
    if path.is_file():
        try:
            model.load_state_dict(load_file(str(path)))
            log.info(f"reusing the cached {arch} trained on {train.name} ({path.name})")
            return model.to(device).eval()
        except Exception:  # damaged cache entry: train again
            path.unlink(missing_ok=True)
    before, start = seconds_saved(resume_path(path)), clock.now()  # an interrupted training's time included
    model = train_on_real(arch, train, space, recipe, seed, device, progress=progress,
                          desc=f"{arch} on all of {train.name}", resume=resume_path(path))
    meta = {"seconds": round(before + clock.now() - start, 3), "device": str(device)}
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp),
                  metadata={"ddbench": json.dumps(meta)})
    return model


def features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Penultimate-layer features (the input of the final linear layer), flattened; differentiable."""
    feats = model.forward_features(x)
    if hasattr(model, "forward_head"):
        feats = model.forward_head(feats, pre_logits=True)
    return feats.flatten(1)


@torch.no_grad()
def embed(model: nn.Module, x: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """`features` of every image of `x`, in eval mode and in chunks."""
    model.eval()
    return torch.cat([features(model, x[start : start + chunk]) for start in range(0, len(x), chunk)])
