"""Unrolled training of a student network on synthetic data, differentiable end to end.

`FlatNetwork` drives an architecture from one flat parameter vector through
`torch.func.functional_call` (views into the vector; no copies into a module), so a sequence of
SGD steps θ_{k+1} = θ_k − η ∇ℓ(θ_k) stays one autograd graph from the synthetic images and the
step size η to the final parameters. `trajectory_matching_loss` is MTT's objective on top of it.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.utils.checkpoint
from torch import nn
from torch.func import functional_call

from ddbench.core.errors import DDBenchError
from ddbench.engine.augment import DSA
from ddbench.models import create_network


class FlatNetwork:
    """An architecture evaluated at a flat parameter vector (named_parameters order)."""

    def __init__(self, arch: str, num_classes: int, in_chans: int, img_size: int | tuple[int, int]) -> None:
        model = create_network(arch, num_classes=num_classes, in_chans=in_chans, img_size=img_size)
        if any(True for _ in model.buffers()):
            raise DDBenchError(f"'{arch}' keeps running buffers (BatchNorm?); unrolled students need a buffer-free network")
        self.names = [n for n, _ in model.named_parameters()]
        self.shapes = [p.shape for _, p in model.named_parameters()]
        self.sizes = [p.numel() for _, p in model.named_parameters()]
        self.numel = sum(self.sizes)
        self.base: nn.Module = model.to("meta")

    def __call__(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        views = {n: t.view(s) for n, t, s in zip(self.names, flat.split(self.sizes), self.shapes)}
        return functional_call(self.base, views, (x,))


def unroll(student: FlatNetwork, start: torch.Tensor, images: torch.Tensor, targets: torch.Tensor, lr: torch.Tensor,
           steps: int, batch_size: int, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
           augment: DSA | None, gen: torch.Generator | None, pick_gen: torch.Generator | None,
           checkpoint: bool = False) -> torch.Tensor:
    """`steps` plain SGD steps from `start` on minibatches of (images, targets); returns the final parameters.

    Minibatches walk through random permutations of the set as in the original MTT loop; DSA
    parameters are drawn per sample for every step (no shared seed, as in MTT's inner loop).

    `checkpoint=True` keeps only each step's inputs (parameters, minibatch, drawn augmentation)
    for the backward pass and recomputes the step's activations there: peak memory no longer
    grows with `steps` (one step's activations instead of all of them) at the price of one more
    forward and inner backward per step. Randomness is drawn outside the recomputed region, so
    the gradients equal those of the plain unroll.
    """
    theta = start.requires_grad_(True) if not start.requires_grad else start
    chunks: list[torch.Tensor] = []
    for _ in range(steps):
        if not chunks:
            perm = torch.randperm(len(images), generator=gen, device=images.device)
            chunks = list(torch.split(perm, batch_size))
        idx = chunks.pop()
        drawn = augment.draw((len(idx), *images.shape[1:]), images.device, gen, pick_gen) if augment is not None else None
        if checkpoint:
            theta = torch.utils.checkpoint.checkpoint(_sgd_step, student, theta, images, idx, targets[idx], lr, loss_fn,
                                                      augment, drawn, use_reentrant=False,
                                                      preserve_rng_state=False)  # nothing random inside
        else:
            theta = _sgd_step(student, theta, images, idx, targets[idx], lr, loss_fn, augment, drawn)
    return theta


def _sgd_step(student: FlatNetwork, theta: torch.Tensor, images: torch.Tensor, idx: torch.Tensor, targets: torch.Tensor,
              lr: torch.Tensor, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], augment: DSA | None,
              drawn: tuple | None) -> torch.Tensor:
    """θ − η ∇ℓ(θ) on images[idx], keeping the graph for the outer (pixel, step size) gradient."""
    x = images[idx]
    if augment is not None:
        x = augment.apply(x, drawn)
    loss = loss_fn(student(theta, x), targets)
    (grad,) = torch.autograd.grad(loss, theta, create_graph=True)
    return theta - lr * grad


def trajectory_matching_loss(final: torch.Tensor, start: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """‖θ_N − θ*_{t+M}‖² / ‖θ*_t − θ*_{t+M}‖² (MTT's normalised parameter distance)."""
    return (final - target).square().sum() / (start - target).square().sum()


def matching_iteration(student: FlatNetwork, start: torch.Tensor, target: torch.Tensor, images: torch.Tensor,
                       targets: torch.Tensor, lr: torch.Tensor, steps: int, batch_size: int,
                       loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], augment: DSA | None,
                       gen: torch.Generator | None, pick_gen: torch.Generator | None,
                       optimizers: Sequence[torch.optim.Optimizer], method: str, iteration: int,
                       checkpoint: bool = False) -> float:
    """One trajectory-matching update (MTT, MKDT): unroll from the expert's `start`, match `target`,
    step every optimizer. A NaN loss, a non-positive step size or non-finite images stop the run."""
    final = unroll(student, start.clone(), images, targets, lr, steps, batch_size, loss_fn, augment, gen, pick_gen, checkpoint)
    loss = trajectory_matching_loss(final, start, target)
    value = loss.item()
    if not math.isfinite(value):
        raise DDBenchError(f"{method} diverged at iteration {iteration} (loss {value}); lower lr_img or lr_lr; no set was written")
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    for opt in optimizers:
        opt.step()
    if lr.item() <= 0 or not torch.isfinite(images).all():
        raise DDBenchError(f"{method} diverged at iteration {iteration} (step size {lr.item():.3g}); lower lr_lr or lr_img; "
                           "no set was written")
    return value
