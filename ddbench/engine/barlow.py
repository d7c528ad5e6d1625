"""Barlow Twins (Zbontar et al. 2021): the teacher of MKDT and the SSL baseline of the transfer protocol.

Two augmented views of each image go through an encoder and a projector; the loss drives the
cross-correlation matrix of the batch-standardised projections to the identity:
Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij². Views are made on the device in one batch with kornia, on
pixels in [0, 1] and normalised afterwards, with mix-bt's parameters (`ViewRecipe`): at 32 px a
random resized crop (scale 0.08–1), flip, colour jitter (0.4, 0.4, 0.4, hue 0.1; p 0.8) and
grayscale (p 0.2); at 64 px jitter and grayscale (p 0.1) first, then a bicubic crop (scale 0.2–1)
and flip. kornia's ColorJitter applies its four operations in one random order per batch, where
torchvision draws the order per image.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from ddbench.core.errors import DDBenchError


@dataclass(frozen=True)
class ViewRecipe:
    """How Barlow Twins views are made, as mix-bt (and KRR-ST, which uses its checkpoints) make them:
    on pixels in [0, 1], normalised afterwards. torchvision's semantics, batched with kornia."""

    crop_scale: tuple[float, float] = (0.08, 1.0)  # RandomResizedCrop; ratio 3/4 .. 4/3
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    colour_first: bool = False  # jitter and grayscale before the crop (mix-bt's Tiny-ImageNet order)
    bicubic: bool = False  # crop resampling: bilinear, or bicubic (Tiny-ImageNet)


# mix-bt's utils.py: CifarPairTransform (32 px) and TinyImageNetPairTransform (64 px).
CIFAR_VIEWS = ViewRecipe()
TINY_VIEWS = ViewRecipe(crop_scale=(0.2, 1.0), grayscale_p=0.1, colour_first=True, bicubic=True)


@dataclass(frozen=True)
class BarlowRecipe:
    epochs: int = 200
    batch_size: int = 512
    lr: float = 1e-3  # Adam
    weight_decay: float = 1e-6
    lambd: float = 0.0051
    projector: tuple[int, ...] = (512, 1024)
    views: ViewRecipe | None = None  # None: mix-bt's recipe for the image size (views_for)


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


def views_for(size: int) -> ViewRecipe:
    return TINY_VIEWS if size >= 64 else CIFAR_VIEWS


def _augmenter(views: ViewRecipe, channels: int, size: tuple[int, int]) -> nn.Module:
    try:
        import kornia.augmentation as K
    except ImportError:
        raise DDBenchError("Barlow Twins views (MKDT's teacher, the ssl-transfer cards) need kornia: "
                           "pip install -e '.[ssl]'") from None

    crop = K.RandomResizedCrop(size, scale=views.crop_scale, ratio=(3 / 4, 4 / 3),
                               resample="BICUBIC" if views.bicubic else "BILINEAR")
    flip = K.RandomHorizontalFlip(p=0.5)
    if channels == 3:
        colour = [K.ColorJitter(*views.jitter, p=views.jitter_p), K.RandomGrayscale(p=views.grayscale_p)]
    else:  # saturation, hue and grayscale mean nothing for one channel
        colour = [K.ColorJitter(views.jitter[0], views.jitter[1], 0.0, 0.0, p=views.jitter_p)]
    ops = [*colour, crop, flip] if views.colour_first else [crop, flip, *colour]
    return nn.Sequential(*ops)


class SSLViews:
    """Augmented views of normalised images: back to pixels, augment as `views` says, clamp, normalise."""

    def __init__(self, views: ViewRecipe, mean: tuple[float, ...], std: tuple[float, ...], shape: tuple[int, int, int],
                 device: torch.device) -> None:
        self.augment = _augmenter(views, shape[0], shape[1:])
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.device = device

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        pixels = (x * self.std + self.mean).clamp(0, 1)
        seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device).item())
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # kornia draws from the global RNG: seed it from ours
            torch.manual_seed(seed)
            out = self.augment(pixels).clamp(0, 1)
        return (out - self.mean) / self.std


def train_barlow(encoder: nn.Module, embed: Callable[[nn.Module, torch.Tensor], torch.Tensor], images: torch.Tensor,
                 recipe: BarlowRecipe, seed: int, mean: tuple[float, ...], std: tuple[float, ...], progress: bool = True,
                 desc: str = "barlow twins") -> nn.Module:
    """Train `encoder` (features via the differentiable `embed(encoder, x)`) with Barlow Twins on `images`,
    normalised with `mean` / `std` (views are made on the pixels, as the reference code does)."""
    device = images.device
    ssl_views = SSLViews(recipe.views or views_for(int(images.shape[-1])), mean, std, tuple(images.shape[1:]), device)
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
