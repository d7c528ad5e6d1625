"""Expert trajectories for trajectory matching (MTT, and MKDT later), trained once and cached by content.

As the official MTT code (buffer.py) trains them: the ConvNet on the full real training set (in
the image space of the run, ZCA included), plain SGD with a constant lr of 0.01, no momentum and
no weight decay (mtt-distillation issue #8), batch 256, DSA on every batch, 50 epochs; the flat
parameters are kept before training and after every epoch, 51 snapshots per expert.

Each expert is one safetensors file `expert_<seed>.safetensors` holding `trajectory`
(epochs + 1, P) in a folder named by a hash of everything that determines it (dataset and its
source, arch, recipe, image space, ZCA included). Distillation reads only the two snapshots an
iteration needs, so 100 CIFAR experts (about 6.5 GB) never sit in memory at once.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ddbench.core import clock
from ddbench.core.paths import atomic_path
from ddbench.data import ImageDataset
from ddbench.data.space import ImageSpace
from ddbench.engine.augment import DSA, STRATEGY_RGB
from ddbench.engine.recipes import TrainRecipe
from ddbench.engine.resume import ResumeFile, recorded_training_seconds
from ddbench.engine.train import train_trajectories

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpertRecipe:
    """MTT's experts by default (plain SGD, CE); MKDT's KD experts set momentum, weight decay and loss="mse"."""

    epochs: int = 50
    lr: float = 0.01
    batch_size: int = 256
    dsa_strategy: str = STRATEGY_RGB  # "none" turns augmentation off
    momentum: float = 0.0
    weight_decay: float = 0.0
    loss: str = "ce"  # "ce" on class labels, "mse" on regression targets

    def train_recipe(self) -> TrainRecipe:
        return TrainRecipe(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
                           weight_decay=self.weight_decay, lr_decay_factor=1.0, augment="dsa", dsa_strategy=self.dsa_strategy)


def _space_fingerprint(space: ImageSpace) -> list:
    """The space as a key: a ZCA by what determined it (its key), a ZCA without one (imported) by its bytes."""
    zca = None
    if space.zca is not None:
        zca = space.zca.key or hashlib.sha256(space.zca.transform.cpu().numpy().tobytes()).hexdigest()[:16]
    return [list(space.mean), list(space.std), zca]


class ExpertBank:
    """The cached trajectories of one (dataset, arch, recipe, space)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, seed: int) -> Path:
        return self.directory / f"expert_{seed}.safetensors"

    def seeds(self) -> list[int]:
        found = []
        for p in self.directory.glob("expert_*.safetensors"):
            try:
                found.append(int(p.stem.split("_")[1]))
            except ValueError:
                continue
        return sorted(found)

    def length(self, seed: int) -> int:
        with safe_open(str(self.path(seed)), framework="pt") as handle:
            return int(handle.get_slice("trajectory").get_shape()[0])

    def snapshots(self, seed: int, *epochs: int) -> list[torch.Tensor]:
        """The flat parameters after the given epochs (0 = the initialisation), read without the rest."""
        with safe_open(str(self.path(seed)), framework="pt") as handle:
            rows = handle.get_slice("trajectory")
            return [rows[e : e + 1][0].clone() for e in epochs]

    def resume_path(self, seed: int) -> Path:
        """Where an interrupted training of expert `seed` keeps the state it goes on from."""
        return self.directory / f"expert_{seed}.resume.pt"

    def save(self, seed: int, trajectory: torch.Tensor, meta: dict) -> None:
        with atomic_path(self.path(seed)) as tmp:
            save_file({"trajectory": trajectory.contiguous()}, str(tmp), metadata={"ddbench": json.dumps(meta)})
        self.resume_path(seed).unlink(missing_ok=True)


def expert_bank(arch: str, train: ImageDataset, space: ImageSpace, recipe: ExpertRecipe, cache_dir: Path,
                targets_id: str = "") -> ExpertBank:
    ident = [train.name, train.fingerprint or train.source, int(train.x_train.shape[0]), arch, dataclasses.asdict(recipe),
             _space_fingerprint(space)]
    if targets_id:
        ident.append(targets_id)
    key = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return ExpertBank(cache_dir / "experts" / f"{train.name}-{arch}-{key}")


def ensure_experts(count: int, arch: str, train: ImageDataset, space: ImageSpace, recipe: ExpertRecipe,
                   device: torch.device, cache_dir: Path, group: int = 10, progress: bool = True,
                   targets: torch.Tensor | None = None,
                   targets_id: str = "") -> tuple[ExpertBank, int]:
    """Experts 0..count-1, training only the missing ones (several at once); returns (bank, number trained).

    `targets` (N, D) with `targets_id` (their content hash) replace the class labels for MSE experts."""
    bank = expert_bank(arch, train, space, recipe, cache_dir, targets_id)
    missing = [s for s in range(count) if s not in set(bank.seeds())]
    if len(missing) < count:
        log.info(f"reusing {count - len(missing)} cached expert trajectories in {bank.directory}")
    for start in range(0, len(missing), group):
        train_experts(bank, missing[start : start + group], count, arch, train, space, recipe, device, progress, targets)
    return bank, len(missing)


def train_experts(bank: ExpertBank, seeds: list[int], count: int, arch: str, train: ImageDataset, space: ImageSpace,
                  recipe: ExpertRecipe, device: torch.device, progress: bool = True,
                  targets: torch.Tensor | None = None) -> None:
    """Train the experts `seeds` (of `count`) and save each one's trajectory into `bank`.

    Where they train one by one (a single seed, or on a CPU, where the loop is the faster way for an expert's few
    dozen epochs), each saves its progress about every minute and a rerun goes on from there; seeds trained stacked
    on a GPU save only at the end."""
    x = space.from_uint8(train.x_train, device)
    y = (targets if targets is not None else train.y_train).to(device)
    outputs = y.shape[1] if y.dim() == 2 else train.num_classes
    augment = DSA(recipe.dsa_strategy) if recipe.dsa_strategy != "none" else None
    meta = {"arch": arch, "dataset": train.name, "recipe": dataclasses.asdict(recipe)}
    resume = None
    if len(seeds) == 1 or device.type == "cpu":
        resume = {seed: ResumeFile(bank.resume_path(seed)) for seed in seeds}
        bank.directory.mkdir(parents=True, exist_ok=True)
    start = clock.now()
    trajectories = train_trajectories(arch, seeds, x, y, recipe.train_recipe(), recipe.epochs, outputs, augment,
                                      progress=progress, desc=f"experts {seeds[0]}-{seeds[-1]} of {count}",
                                      label_mode="regression" if recipe.loss == "mse" else "hard", resume=resume)
    before = sum(f.seconds_before for f in resume.values()) if resume else 0.0  # time the interrupted runs spent
    seconds = (clock.now() - start + before) / len(seeds)
    for seed, trajectory in zip(seeds, trajectories):
        bank.save(seed, trajectory, {**meta, "seed": seed, "seconds": round(seconds, 3), "device": str(device)})


def recorded_seconds(bank: ExpertBank) -> float | None:
    """The mean training time of the bank's experts made so far, where their files recorded it."""
    times = [t for t in (recorded_training_seconds(bank.path(seed)) for seed in bank.seeds()) if t is not None]
    return sum(times) / len(times) if times else None
