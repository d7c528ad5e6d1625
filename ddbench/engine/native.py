"""Dataset Distillation's native regime: train fresh networks with exactly a set's learned steps.

A DD set is a schedule: `distill_steps` groups of images (one group per step, in order), repeated
for `distill_epochs`, step t using its own learned step size (aux tensor `step_lrs`, length
steps × epochs). Random-init sets are evaluated on freshly drawn networks (DD's Xavier-normal
initialisation, gain 1, seeded per evaluation seed); fixed-init sets on the initialisation they
carry (aux `init_params`). All networks of one evaluation train at once under torch.func.vmap.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import grad, vmap
from tqdm.auto import tqdm

from ddbench.core import clock
from ddbench.core.errors import DDBenchError
from ddbench.engine.train import flat_parameters
from ddbench.engine.unroll import FlatNetwork
from ddbench.models import create_network
from ddbench.models.init import xavier_init
from ddbench.store.distilled import DistilledSet


@dataclass(frozen=True)
class Schedule:
    """The steps of a DD set: images and labels per step, and one step size per (epoch, step)."""

    images: torch.Tensor
    labels: torch.Tensor
    lrs: torch.Tensor
    steps: int  # distinct image groups

    def __iter__(self):
        per_step = len(self.images) // self.steps
        for t, lr in enumerate(self.lrs):
            k = t % self.steps
            yield self.images[k * per_step : (k + 1) * per_step], self.labels[k * per_step : (k + 1) * per_step], lr


def schedule_of(dset: DistilledSet, device: torch.device | str = "cpu") -> Schedule:
    info = dset.extra.get("dd")
    if not info or "step_lrs" not in dset.aux:
        raise DDBenchError(f"set from '{dset.method}' carries no DD step schedule (extra['dd'] and aux step_lrs); "
                           "dd-native cards evaluate sets made by the dd method")
    steps = int(info["distill_steps"])
    if len(dset.images) % steps or len(dset.aux["step_lrs"]) % steps:
        raise DDBenchError("DD schedule: images and step sizes do not divide into the set's distill steps")
    return Schedule(dset.images.to(device), dset.labels.to(device), dset.aux["step_lrs"].to(device), steps)


# Evaluation networks are seeded by their evaluation seed (0 .. MAX_SEEDS-1); the networks a
# distillation trains its set on are seeded from DISTILL_SEED_BASE up, so the two never meet and
# the tested networks are held out, as in the paper.
DISTILL_SEED_BASE = 2**40
_PER_DISTILL_SEED = 2**24  # networks one distillation may draw (400 epochs × 59 batches is 23,600)


def distill_network_seed(distill_seed: int, counter: int) -> int:
    """The torch seed of the `counter`-th network a DD distillation with `distill_seed` draws."""
    if not 0 <= counter < _PER_DISTILL_SEED:
        raise DDBenchError(f"dd: a distillation draws at most {_PER_DISTILL_SEED} networks")
    return DISTILL_SEED_BASE + distill_seed * _PER_DISTILL_SEED + counter


def random_inits(arch: str, seeds: list[int], num_classes: int, in_chans: int, img_size: tuple[int, int],
                 gain: float = 1.0) -> torch.Tensor:
    """(S, P) flat initial parameters, DD's Xavier-normal init, one network per seed."""
    rows = []
    for seed in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            rows.append(flat_parameters(xavier_init(create_network(arch, num_classes, in_chans, img_size), gain)))
    return torch.stack(rows)


def apply_schedule(student: FlatNetwork, weights: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """Plain SGD on every network of `weights` (S, P) along the schedule; returns the trained weights."""
    step_grad = vmap(grad(lambda w, x, y: F.cross_entropy(student(w, x), y)), in_dims=(0, None, None))
    for x, y, lr in schedule:
        weights = weights - lr * step_grad(weights, x, y)
    return weights


@torch.no_grad()
def accuracies(student: FlatNetwork, weights: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
               budget: int = 2**27, progress: bool = False) -> torch.Tensor:
    """Top-1 accuracy of each network in `weights` (S, P) on (x, y), in chunks that bound memory."""
    per_image = int(x[:1].numel()) * 64  # rough activation size per image and network
    correct = torch.zeros(len(weights), device=weights.device)
    group = max(1, min(len(weights), budget // max(1, per_image * 256)))
    chunk = max(1, budget // max(1, per_image * group))
    forward = vmap(student, in_dims=(0, None))
    for g in tqdm(range(0, len(weights), group), desc=f"testing {len(weights)} networks", unit="group",
                  disable=not progress or len(weights) <= group, leave=False):
        w = weights[g : g + group]
        for start in range(0, len(x), chunk):
            pred = forward(w, x[start : start + chunk]).argmax(-1)
            correct[g : g + group] += (pred == y[start : start + chunk]).sum(-1)
    return correct / len(x)


@dataclass(frozen=True)
class NativeResult:
    """Per network: test accuracy after the schedule and of its initialisation (before any step)."""

    accuracies: list[float]
    init_accuracies: list[float]
    seconds: float


def evaluate_native(dset: DistilledSet, arch: str, seeds: list[int], x_test: torch.Tensor, y_test: torch.Tensor,
                    device: torch.device, progress: bool = False) -> NativeResult:
    """Accuracies of fresh (or the set's fixed) `arch` networks trained natively, before and after; wall time."""
    start = clock.now()
    shape = dset.image_shape
    student = FlatNetwork(arch, dset.num_classes, shape[0], shape[1:])
    if dset.extra["dd"].get("init") == "fixed":
        init = dset.aux.get("init_params")
        if init is None or init.numel() != student.numel:
            raise DDBenchError(f"fixed-init DD set lacks an initialisation for '{arch}' ({student.numel} parameters)")
        weights = init.to(device).float().unsqueeze(0).repeat(len(seeds), 1)
    else:
        weights = random_inits(arch, seeds, dset.num_classes, shape[0], shape[1:],
                               float(dset.extra["dd"].get("init_gain", 1.0))).to(device)
    before = accuracies(student, weights, x_test, y_test)
    weights = apply_schedule(student, weights, schedule_of(dset, device))
    after = accuracies(student, weights, x_test, y_test, progress=progress)
    return NativeResult([float(a) for a in after.cpu()], [float(a) for a in before.cpu()], clock.now() - start)
