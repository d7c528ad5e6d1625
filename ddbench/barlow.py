"""Barlow Twins (Zbontar et al. 2021): the teacher of MKDT and the SSL baseline of the transfer protocol.

Two augmented views of each image go through an encoder and a projector; the loss drives the
cross-correlation matrix of the batch-standardised projections to the identity:
Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij². Views are made on the device in one batch: random resized crop
(scale 0.2–1) with horizontal flip via affine grids, colour jitter (0.4 brightness/contrast/
saturation, p 0.8) and grayscale (p 0.2) — the usual CIFAR recipe without blur.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm


@dataclass(frozen=True)
class BarlowRecipe:
    epochs: int = 200
    batch_size: int = 512
    lr: float = 1e-3  # Adam
    weight_decay: float = 1e-6
    lambd: float = 0.0051
    projector: tuple[int, ...] = (512, 1024)


def projector(in_dim: int, dims: tuple[int, ...]) -> nn.Module:
    layers: list[nn.Module] = []
    for i, d in enumerate(dims):
        last = i == len(dims) - 1
        layers.append(nn.Linear(in_dim, d, bias=last))
        if not last:
            layers += [nn.BatchNorm1d(d), nn.ReLU(inplace=True)]
        in_dim = d
    return nn.Sequential(*layers)


def barlow_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float) -> torch.Tensor:
    n = len(z1)
    z1 = (z1 - z1.mean(0)) / (z1.std(0) + 1e-5)
    z2 = (z2 - z2.mean(0)) / (z2.std(0) + 1e-5)
    c = z1.T @ z2 / n
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on + lambd * off


def ssl_views(x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """One augmented view per image (random resized crop + flip, colour jitter, grayscale), batched."""
    n, c, h, w = x.shape
    dev = x.device

    def u(*shape):
        return torch.rand(*shape, generator=gen, device=dev)

    area = 0.2 + 0.8 * u(n)
    log_ratio = (u(n) - 0.5) * 2 * math.log(4 / 3)
    ratio = torch.exp(log_ratio)
    sw = torch.sqrt(area * ratio).clamp(max=1.0)
    sh = torch.sqrt(area / ratio).clamp(max=1.0)
    tx = (u(n) * 2 - 1) * (1 - sw)
    ty = (u(n) * 2 - 1) * (1 - sh)
    flip = torch.where(u(n) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2] = sw * flip, tx
    theta[:, 1, 1], theta[:, 1, 2] = sh, ty
    out = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False, padding_mode="reflection")
    jitter = (u(n) < 0.8).view(n, 1, 1, 1).to(x.dtype)
    b = 1 + (u(n) - 0.5).view(n, 1, 1, 1) * 0.8
    k = 1 + (u(n) - 0.5).view(n, 1, 1, 1) * 0.8
    s = 1 + (u(n) - 0.5).view(n, 1, 1, 1) * 0.8
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    gray = out.mean(dim=1, keepdim=True)
    jittered = ((out * b - mean) * k + mean - gray) * s + gray
    out = jitter * jittered + (1 - jitter) * out
    if c == 3:
        to_gray = (u(n) < 0.2).view(n, 1, 1, 1).to(x.dtype)
        out = to_gray * out.mean(dim=1, keepdim=True).expand_as(out) + (1 - to_gray) * out
    return out


def train_barlow(encoder: nn.Module, embed: Callable[[nn.Module, torch.Tensor], torch.Tensor], images: torch.Tensor,
                 recipe: BarlowRecipe, seed: int, progress: bool = True, desc: str = "barlow twins") -> nn.Module:
    """Train `encoder` (features via the differentiable `embed(encoder, x)`) with Barlow Twins on `images`."""
    device = images.device
    with torch.no_grad():
        dim = embed(encoder.eval(), images[:2]).shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = projector(dim, recipe.projector).to(device)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    batch = min(recipe.batch_size, len(images))
    encoder.train()
    head.train()
    for _ in tqdm(range(recipe.epochs), desc=desc, unit="ep", disable=not progress, leave=False):
        perm = torch.randperm(len(images), generator=gen, device=device)
        for lo in range(0, len(images) - batch + 1, batch):  # full batches: BT's statistics need them
            x = images[perm[lo : lo + batch]]
            z1 = head(embed(encoder, ssl_views(x, gen)))
            z2 = head(embed(encoder, ssl_views(x, gen)))
            loss = barlow_loss(z1, z2, recipe.lambd)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return encoder.eval()
