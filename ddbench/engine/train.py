"""Training loops shared by evaluation and by methods: fresh networks on a small tensor dataset.

Two ways to train S seeds of one architecture, with the same random streams per seed:
- "loop": one network after another (any architecture, BatchNorm included);
- "vmap": all S networks as one stacked module (torch.func.stack_module_state + functional_call
  + vmap), one forward/backward per step for all of them. Only for architectures without
  running statistics (BatchNorm) — the ConvNet family with instance norm is the common case.
"auto" times a few steps of each on the real data and keeps the faster (recorded in each row).

Seed s fixes the network's initialisation (CPU RNG forked and seeded with s), the data order and
DSA parameters (a device generator seeded with s) and the DSA group choices (a CPU generator).
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state
from torch.profiler import record_function
from tqdm.auto import tqdm

from ddbench.core import clock
from ddbench.engine.augment import DSA
from ddbench.engine.precision import autocast, autocast_dtype
from ddbench.engine.recipes import TrainRecipe
from ddbench.engine.resume import ResumeFile
from ddbench.models import create_network

MODES = ("auto", "loop", "vmap")
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Streams:
    """The random streams of one seed: `device` for data order and DSA parameters, `pick` for DSA groups."""

    device: torch.Generator
    pick: torch.Generator

    @classmethod
    def for_seed(cls, seed: int, device: torch.device) -> "Streams":
        dev = torch.Generator(device=device)
        dev.manual_seed(seed)
        pick = torch.Generator()
        pick.manual_seed(seed + 1_000_003)
        return cls(dev, pick)


def init_network(arch: str, seed: int, num_classes: int, in_chans: int, img_size: int | tuple[int, int]) -> nn.Module:
    """A fresh network whose initial weights depend on `seed` alone (not on global RNG state)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_network(arch, num_classes=num_classes, in_chans=in_chans, img_size=img_size)


def loss_function(label_mode: str) -> LossFn:
    """Per-sample losses: cross-entropy on hard labels or soft label distributions, MSE on targets."""
    if label_mode == "regression":
        return lambda out, y: F.mse_loss(out, y, reduction="none").mean(-1)
    return lambda out, y: F.cross_entropy(out, y, reduction="none")


def vmappable(model: nn.Module) -> bool:
    """Stacked training needs modules without running statistics or dropout randomness."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return False
        if isinstance(module, nn.Dropout) and module.p > 0:
            return False
    return True


@dataclass
class TrainResult:
    models: list[nn.Module]  # trained, in eval mode, on the training device
    mode: str
    seconds: float


class _Stacked:
    """S networks of one architecture as stacked parameters driven through vmap."""

    def __init__(self, models: Sequence[nn.Module], device: torch.device) -> None:
        params, buffers = stack_module_state([m.to(device) for m in models])
        self.params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        self.buffers = {k: v.detach() for k, v in buffers.items()}
        self.base = copy.deepcopy(models[0]).to("meta")
        self.models = models

        def call(p, b, x):
            return functional_call(self.base, (p, b), (x,))

        self.forward = torch.func.vmap(call)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(self.params, self.buffers, x)

    def flat(self) -> torch.Tensor:
        """(S, P): each network's parameters as one vector, in `named_parameters` order."""
        return torch.cat([v.detach().flatten(1) for v in self.params.values()], dim=1)

    def unstack(self) -> list[nn.Module]:
        for i, model in enumerate(self.models):
            model.load_state_dict({k: v[i].detach() for k, v in {**self.params, **self.buffers}.items()})
        return list(self.models)


def _optimizer(params, lr: float, recipe: TrainRecipe) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)


def _batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


def train_networks(
    arch: str,
    seeds: Sequence[int],
    images: torch.Tensor,
    targets: torch.Tensor,
    label_mode: str,
    recipe: TrainRecipe,
    lr: float,
    num_classes: int,
    augment: DSA | None,
    mode: str = "auto",
    progress: bool = True,
    desc: str = "",
    per_seed_data: bool = False,
    on_trained: Callable[[int, nn.Module], None] | None = None,
) -> TrainResult:
    """Train one fresh `arch` network per seed on (images, targets) with the card's recipe.

    `images`/`targets` live on the training device: (N, C, H, W) / (N, ...) shared by all seeds, or
    (S, N, C, H, W) / (S, N, ...) with one dataset per seed (`per_seed_data=True`). The loop runs recipe.epochs + 1 passes,
    shuffling each pass, with lr × lr_decay_factor (and fresh momentum) after pass epochs // 2 + 1.
    `on_trained(i, model)` is called as soon as seed i's network is done (in eval mode), so callers
    can save its result before the next one starts.
    """
    seeds = list(seeds)
    if not per_seed_data:
        images, targets = images.unsqueeze(0), targets.unsqueeze(0)
    if len(images) not in (1, len(seeds)):
        raise ValueError(f"{len(images)} datasets for {len(seeds)} seeds")
    in_chans, img_size = images.shape[2], tuple(images.shape[3:])
    models = [init_network(arch, s, num_classes, in_chans, img_size) for s in seeds]
    mode = choose_mode(mode, arch, seeds, images, targets, label_mode, recipe, lr, num_classes, augment,
                       per_seed_data=True, stackable=len(seeds) > 1 and vmappable(models[0]))
    loss_fn = loss_function(label_mode)
    start = clock.now()
    total = (recipe.epochs + 1) * (1 if mode == "vmap" else len(seeds))
    bar = tqdm(total=total, desc=desc or arch, unit="ep", disable=not progress, leave=False, mininterval=1.0)
    try:
        trained: list[nn.Module] = []
        if mode == "vmap":
            for i, m in enumerate(_train_stacked(models, seeds, images, targets, loss_fn, recipe, lr, augment, bar)):
                trained.append(m.eval())
                if on_trained:
                    on_trained(i, m)
        else:
            for i, (m, s) in enumerate(zip(models, seeds)):
                m = _train_one(m, s, images[i % len(images)], targets[i % len(images)], loss_fn, recipe, lr, augment, bar)
                trained.append(m.eval())
                if on_trained:
                    on_trained(i, m)
    finally:
        bar.close()
    return TrainResult(trained, mode, clock.now() - start)


Snapshot = Callable[[int, torch.Tensor], None]  # (epochs done, flat parameters (S, P))


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """All parameters in `named_parameters` order, as one detached vector."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _train_one(model, seed, images, targets, loss_fn, recipe, lr, augment, bar, epochs: int | None = None,
               snapshot: Snapshot | None = None, resume: ResumeFile | None = None) -> nn.Module:
    """Train one network; with `resume`, an interrupted run goes on from its saved epoch (snapshots replayed)."""
    device = images.device
    model = model.to(device).train()
    streams = Streams.for_seed(seed, device)
    generators = [streams.device, streams.pick]
    opt = _optimizer(model.parameters(), lr, recipe)
    n = len(images)
    passes = recipe.epochs + 1 if epochs is None else epochs
    kept: list[torch.Tensor] = []  # the snapshots so far, for the resume file

    def emit(ep: int, flat: torch.Tensor | None = None) -> None:
        if snapshot:
            flat = flat_parameters(model) if flat is None else flat
            snapshot(ep, flat.unsqueeze(0))
            if resume is not None:
                kept.append(flat.cpu())

    first, saved = resume.restore(model, opt, generators, device) if resume is not None else (0, {})
    if first:
        lr = opt.param_groups[0]["lr"]  # the saved optimizer carries any decay already made
        for ep, flat in enumerate(saved.get("snapshots", [])):
            emit(ep, flat)
        bar.update(first)
    else:
        emit(0)
    for ep in range(first, passes):
        with record_function("ddbench.data"):
            perm = torch.randperm(n, generator=streams.device, device=device)
        for lo, hi in _batches(n, recipe.batch_size):
            with record_function("ddbench.data"):
                idx = perm[lo:hi]
                x = images[idx]
            if augment is not None:
                with record_function("ddbench.engine.augment"):
                    x = augment(x, streams.device, streams.pick)
            with record_function("ddbench.forward"), autocast(device):
                loss = loss_fn(model(x).float(), targets[idx]).mean()
            with record_function("ddbench.backward"):
                opt.zero_grad(set_to_none=True)
                loss.backward()
            with record_function("ddbench.optimizer"):
                opt.step()
        if ep == recipe.decay_after:
            lr *= recipe.lr_decay_factor
            opt = _optimizer(model.parameters(), lr, recipe)
        emit(ep + 1)
        bar.update(1)
        if resume is not None and ep + 1 < passes:
            resume.save_if_due(ep + 1, model, opt, generators, **({"snapshots": torch.stack(kept)} if kept else {}))
    if resume is not None:
        resume.finish()
    return model


def _train_stacked(models, seeds, images, targets, loss_fn, recipe, lr, augment, bar, epochs: int | None = None,
                   snapshot: Snapshot | None = None) -> list[nn.Module]:
    """`images` (1 or S, N, C, H, W): one dataset shared by all models, or one per model."""
    device = images.device
    stacked = _Stacked(models, device)
    streams = [Streams.for_seed(s, device) for s in seeds]
    opt = _optimizer(list(stacked.params.values()), lr, recipe)
    n, count = images.shape[1], len(seeds)
    which = torch.arange(count, device=device).view(-1, 1) % len(images)
    if snapshot:
        snapshot(0, stacked.flat())
    for ep in range(recipe.epochs + 1 if epochs is None else epochs):
        perms = torch.stack([torch.randperm(n, generator=s.device, device=device) for s in streams])
        for lo, hi in _batches(n, recipe.batch_size):
            idx = perms[:, lo:hi]
            x = images[which, idx]
            if augment is not None:
                x = augment.stacked(x, [s.device for s in streams], [s.pick for s in streams])
            with autocast(device):
                out = stacked(x).float()
            y = targets[which, idx]
            loss = loss_fn(out.flatten(0, 1), y.flatten(0, 1)).view(count, -1).mean(1).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if ep == recipe.decay_after:
            lr *= recipe.lr_decay_factor
            opt = _optimizer(list(stacked.params.values()), lr, recipe)
        if snapshot:
            snapshot(ep + 1, stacked.flat())
        bar.update(1)
    return stacked.unstack()


def train_trajectories(arch: str, seeds: Sequence[int], images: torch.Tensor, targets: torch.Tensor, recipe: TrainRecipe,
                       epochs: int, num_classes: int, augment: DSA | None, mode: str = "auto", progress: bool = True,
                       desc: str = "", label_mode: str = "hard",
                       resume: Mapping[int, ResumeFile] | None = None) -> list[torch.Tensor]:
    """Train one network per seed for exactly `epochs` passes and return each one's trajectory:
    its flat parameters before training and after every pass, (epochs + 1, P) on the CPU.

    `resume` (seed -> its resume file) makes the seeds train one by one, each going on from where an interrupted run
    saved it; without it the seeds may train stacked (then nothing is saved before the end)."""
    seeds = list(seeds)
    shared_x, shared_y = images.unsqueeze(0), targets.unsqueeze(0)
    in_chans, img_size = images.shape[1], tuple(images.shape[2:])
    models = [init_network(arch, s, num_classes, in_chans, img_size) for s in seeds]
    mode = "loop" if resume else mode
    mode = choose_mode(mode, arch, seeds, shared_x, shared_y, label_mode, recipe, recipe.lr, num_classes, augment,
                       per_seed_data=True, stackable=len(seeds) > 1 and vmappable(models[0]))
    loss_fn = loss_function(label_mode)
    frames: list[list[torch.Tensor]] = [[] for _ in seeds]
    bar = tqdm(total=epochs * (1 if mode == "vmap" else len(seeds)), desc=desc or arch, unit="ep",
               disable=not progress, leave=False, mininterval=1.0)
    try:
        if mode == "vmap":
            def keep(_: int, flat: torch.Tensor) -> None:
                for i, row in enumerate(flat.cpu()):
                    frames[i].append(row)

            _train_stacked(models, seeds, shared_x, shared_y, loss_fn, recipe, recipe.lr, augment, bar, epochs=epochs, snapshot=keep)
        else:
            for i, (model, seed) in enumerate(zip(models, seeds)):
                _train_one(model, seed, images, targets, loss_fn, recipe, recipe.lr, augment, bar, epochs=epochs,
                           snapshot=lambda _, flat, i=i: frames[i].append(flat[0].cpu()),
                           resume=resume.get(seed) if resume else None)
    finally:
        bar.close()
    return [torch.stack(f) for f in frames]


log = logging.getLogger(__name__)
_MODE_CACHE: dict[tuple, str] = {}
# Below this many passes "auto" does not time: it takes the loop on a CPU (measured faster, see
# benchmarks/RESULTS.md) and the stacked run on a GPU, where it saves kernel launches.
SHORT_RECIPE = 400


def choose_mode(requested: str, arch: str, seeds: Sequence[int], images: torch.Tensor, targets: torch.Tensor,
                label_mode: str, recipe: TrainRecipe, lr: float, num_classes: int, augment: DSA | None,
                per_seed_data: bool = False, stackable: bool | None = None) -> str:
    """The way `train_networks` will train: "loop" or "vmap".

    "auto" times a few passes of each on throwaway networks and keeps the faster (cached per
    shape); recipes shorter than SHORT_RECIPE passes are not timed (see there). "vmap" falls
    back to "loop" for a single seed or an architecture with BatchNorm.
    """
    if requested not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if not per_seed_data:
        images, targets = images.unsqueeze(0), targets.unsqueeze(0)
    if stackable is None:
        probe = init_network(arch, 0, num_classes, images.shape[2], tuple(images.shape[3:]))
        stackable = len(seeds) > 1 and vmappable(probe)
    if not stackable or requested == "loop":
        return "loop"
    if requested == "vmap" or (recipe.epochs + 1 < SHORT_RECIPE and images.device.type == "cuda"):
        # (timing would cost a sizeable share of a short run: on a GPU stacked wins, if the arch trains stacked at all)
        return "vmap" if _vmap_works(arch, list(seeds), images, targets, label_mode, recipe, lr, num_classes, augment) else "loop"
    if recipe.epochs + 1 < SHORT_RECIPE:
        return "loop"
    return _time_modes(arch, list(seeds), images, targets, label_mode, recipe, lr, num_classes, augment)


_VMAP_WORKS: dict[tuple, bool] = {}


def _vmap_works(arch, seeds, images, targets, label_mode, recipe, lr, num_classes, augment) -> bool:
    """One stacked step on throwaway networks; an architecture that fails under vmap falls back to the loop with one
    logged line (cached per arch, seed count, shape and device)."""
    key = (arch, len(seeds), tuple(images.shape), str(images.device))
    if key not in _VMAP_WORKS:
        fresh = [init_network(arch, s, num_classes, images.shape[2], tuple(images.shape[3:])) for s in seeds]
        try:
            _train_stacked(fresh, seeds, images, targets, loss_function(label_mode), recipe, lr, augment, _NullBar(), epochs=1)
            _VMAP_WORKS[key] = True
        except (RuntimeError, NotImplementedError, TypeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:160]
            log.warning("%s cannot train stacked (vmap: %s: %s); its seeds train one by one", arch, type(exc).__name__, first)
            _VMAP_WORKS[key] = False
    return _VMAP_WORKS[key]


def _time_modes(arch, seeds, images, targets, label_mode, recipe, lr, num_classes, augment) -> str:
    device = images.device
    # the precision in scope is part of the key: the faster way at fp32 need not be the faster under bf16
    key = (arch, len(seeds), tuple(images.shape), str(device), recipe.batch_size, str(autocast_dtype()))
    if key in _MODE_CACHE:
        return _MODE_CACHE[key]
    loss_fn = loss_function(label_mode)
    in_chans, img_size = images.shape[2], tuple(images.shape[3:])
    steps = max(4, min(8, 256 // max(1, len(_batches(images.shape[1], recipe.batch_size)))))
    timings = {}
    if not _vmap_works(arch, seeds, images, targets, label_mode, recipe, lr, num_classes, augment):
        _MODE_CACHE[key] = "loop"
        return "loop"
    for mode in ("vmap", "loop"):
        fresh = [init_network(arch, s, num_classes, in_chans, img_size) for s in seeds]
        null_bar = _NullBar()
        for warm in (True, False):
            _sync(device)
            t0 = clock.now()
            if mode == "vmap":
                _train_stacked(fresh, seeds, images, targets, loss_fn, recipe, lr, augment, null_bar, epochs=1 if warm else steps)
            else:
                for i, (m, s) in enumerate(zip(fresh, seeds)):
                    _train_one(m, s, images[i % len(images)], targets[i % len(images)], loss_fn, recipe, lr, augment,
                               null_bar, epochs=1 if warm else steps)
            _sync(device)
            timings[mode] = clock.now() - t0
    choice = "vmap" if timings["vmap"] < timings["loop"] else "loop"
    _MODE_CACHE[key] = choice
    return choice


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 1024) -> float:
    """Top-1 accuracy of `model` on (x, y), both already on the model's device and in its input space."""
    model.eval()
    correct = 0
    for start in range(0, len(x), chunk):
        with autocast(x.device):
            logits = model(x[start : start + chunk])
        correct += (logits.argmax(1) == y[start : start + chunk]).sum().item()
    return correct / max(1, len(x))


__all__ = ["train_networks", "train_trajectories", "flat_parameters", "choose_mode", "accuracy", "init_network",
           "loss_function", "Streams", "TrainResult", "MODES"]
