"""Differentiable Siamese Augmentation (DSA, Zhao & Bilen 2021), batched on the device.

Semantics follow the original `DiffAugment` in 'S' mode: for each batch one transform group is
drawn from the strategy (e.g. 'color_crop_cutout_flip_scale_rotate'), and that group's random
parameters are drawn per sample. Strengths are the originals (ParamDiffAug). Every op is
differentiable in the images, so distillation methods reuse it.

Differences from the original code, none of which changes the distribution of augmentations:
randomness comes from an explicit torch.Generator (the original reseeds the global RNG), and
the affine parameters are built as tensors on the device instead of Python lists.

Each op is split into `draw` (random parameters for n samples) and `apply`, so that several
models training together (images shaped (S, B, C, H, W)) each draw their group and parameters
from their own generators — the same streams as when each model trains alone — while the
transform itself runs once over the whole stack.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

GROUPS = ("color", "crop", "cutout", "flip", "scale", "rotate")
STRATEGY_RGB = "color_crop_cutout_flip_scale_rotate"
STRATEGY_DIGITS = "color_crop_cutout_scale_rotate"  # flip is not used for digit datasets


@dataclass(frozen=True)
class DSAParams:
    """The original ParamDiffAug strengths."""

    prob_flip: float = 0.5
    ratio_scale: float = 1.2
    ratio_rotate: float = 15.0
    ratio_crop_pad: float = 0.125
    ratio_cutout: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5


Params = dict[str, torch.Tensor]


def _u(n: int, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device)


def _i(low: int, high: int, n: int, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.randint(low, high, (n,), generator=gen, device=device)


def _col(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.to(x.dtype).view(-1, 1, 1, 1)


# --- color ----------------------------------------------------------------------------------
def draw_color(n: int, shape: tuple, p: DSAParams, gen, device) -> Params:
    return {"brightness": _u(n, gen, device), "saturation": _u(n, gen, device), "contrast": _u(n, gen, device)}


def apply_color(x: torch.Tensor, q: Params, p: DSAParams) -> torch.Tensor:
    x = x + (_col(q["brightness"], x) - 0.5) * p.brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_col(q["saturation"], x) * p.saturation) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_col(q["contrast"], x) + p.contrast) + mean


# --- crop: translate by up to ratio_crop_pad of the size; uncovered pixels become 0 ----------
def draw_crop(n: int, shape: tuple, p: DSAParams, gen, device) -> Params:
    h, w = shape[-2:]
    sx, sy = int(h * p.ratio_crop_pad + 0.5), int(w * p.ratio_crop_pad + 0.5)
    return {"tx": _i(-sx, sx + 1, n, gen, device), "ty": _i(-sy, sy + 1, n, gen, device)}


def apply_crop(x: torch.Tensor, q: Params, p: DSAParams) -> torch.Tensor:
    n, _, h, w = x.shape
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + q["tx"].view(n, 1, 1) + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + q["ty"].view(n, 1, 1) + 1).clamp(0, w + 1)
    # a gather over the flattened padded image keeps the result in plain NCHW strides; an indexed
    # NHWC view permuted back gives 1-channel images channels-last strides, and the network then runs
    # its channels-last kernels: 1.1-1.2x slower at fp32, 2.5-2.9x under bf16 on a CPU (benchmarks/bench_layout.py)
    padded = F.pad(x, [1, 1, 1, 1]).flatten(2)
    where = (rows * (w + 2) + cols).view(n, 1, h * w).expand(n, x.shape[1], h * w)
    return padded.gather(2, where).view_as(x)


# --- cutout: zero a square of ratio_cutout × the size, clipped at the border --------------------
def _cut_size(shape: tuple, p: DSAParams) -> tuple[int, int]:
    h, w = shape[-2:]
    return int(h * p.ratio_cutout + 0.5), int(w * p.ratio_cutout + 0.5)


def draw_cutout(n: int, shape: tuple, p: DSAParams, gen, device) -> Params:
    h, w = shape[-2:]
    ch, cw = _cut_size(shape, p)
    return {"ox": _i(0, h + (1 - ch % 2), n, gen, device), "oy": _i(0, w + (1 - cw % 2), n, gen, device)}


def apply_cutout(x: torch.Tensor, q: Params, p: DSAParams) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = _cut_size(x.shape, p)
    ox = q["ox"].view(n, 1, 1) - ch // 2
    oy = q["oy"].view(n, 1, 1) - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= ox) & (rows < ox + ch) & (cols >= oy) & (cols < oy + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


# --- flip ------------------------------------------------------------------------------------
def draw_flip(n: int, shape: tuple, p: DSAParams, gen, device) -> Params:
    return {"u": _u(n, gen, device)}


def apply_flip(x: torch.Tensor, q: Params, p: DSAParams) -> torch.Tensor:
    return torch.where(q["u"].view(-1, 1, 1, 1) < p.prob_flip, x.flip(3), x)


# --- scale and rotate: affine resampling (bilinear, zero padding) -------------------------------
def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def draw_scale(n: int, shape: tuple, p: DSAParams, gen, device) -> Params:
    return {"sx": _u(n, gen, device), "sy": _u(n, gen, device)}


def apply_scale(x: torch.Tensor, q: Params, p: DSAParams) -> torch.Tensor:
    r = p.ratio_scale
    theta = torch.zeros(len(x), 2, 3, device=x.device)
    theta[:, 0, 0] = q["sx"] * (r - 1.0 / r) + 1.0 / r
    theta[:, 1, 1] = q["sy"] * (r - 1.0 / r) + 1.0 / r
    return _affine(x, theta)


def draw_rotate(n: int, shape: tuple, p: DSAParams, gen, device) -> Params:
    return {"u": _u(n, gen, device)}


def apply_rotate(x: torch.Tensor, q: Params, p: DSAParams) -> torch.Tensor:
    angle = (q["u"] - 0.5) * 2 * p.ratio_rotate / 180 * math.pi
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    return _affine(x, theta)


TRANSFORMS = {
    "color": (draw_color, apply_color), "crop": (draw_crop, apply_crop), "cutout": (draw_cutout, apply_cutout),
    "flip": (draw_flip, apply_flip), "scale": (draw_scale, apply_scale), "rotate": (draw_rotate, apply_rotate),
}


class DSA:
    """Callable augmentation.

    `dsa(x, gen)` on (B, C, H, W): one group for the batch, parameters per sample.
    `dsa.stacked(x, gens, pick_gens)` on (S, B, C, H, W): model s uses gens[s] / pick_gens[s].
    `gen` draws the per-sample parameters on x's device; `pick_gen` (a CPU generator) draws the
    group, so choosing it never waits on the device.
    """

    def __init__(self, strategy: str = STRATEGY_RGB, params: DSAParams = DSAParams()) -> None:
        self.groups = [g for g in strategy.split("_") if g and g.lower() != "none"]
        unknown = set(self.groups) - set(GROUPS)
        if unknown:
            raise ValueError(f"unknown DSA group(s) {sorted(unknown)}; known: {GROUPS}")
        self.strategy, self.params = strategy, params

    def _pick(self, pick_gen: torch.Generator | None) -> str:
        return self.groups[int(torch.randint(len(self.groups), (1,), generator=pick_gen).item())]

    def __call__(self, x: torch.Tensor, gen: torch.Generator | None = None,
                 pick_gen: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(x, self.draw(x.shape, x.device, gen, pick_gen))

    def draw(self, shape: torch.Size | tuple, device: torch.device, gen: torch.Generator | None = None,
             pick_gen: torch.Generator | None = None) -> tuple[str, Params] | None:
        """The group and per-sample parameters for a batch of `shape` (what `__call__` would draw)."""
        if not self.groups:
            return None
        group = self._pick(pick_gen)
        return group, TRANSFORMS[group][0](shape[0], tuple(shape), self.params, gen, device)

    def apply(self, x: torch.Tensor, drawn: tuple[str, Params] | None) -> torch.Tensor:
        """Apply parameters from `draw`: deterministic, so a recomputation (checkpointing) repeats it exactly."""
        if drawn is None:
            return x
        group, params = drawn
        return TRANSFORMS[group][1](x, params, self.params).contiguous()

    def stacked(self, x: torch.Tensor, gens: list, pick_gens: list) -> torch.Tensor:
        if not self.groups:
            return x
        models, batch = x.shape[:2]
        flat = x.reshape(models * batch, *x.shape[2:])
        by_group: dict[str, list[tuple[int, Params]]] = {}
        for m in range(models):
            group = self._pick(pick_gens[m])
            by_group.setdefault(group, []).append((m, TRANSFORMS[group][0](batch, x.shape, self.params, gens[m], x.device)))
        if len(by_group) == 1:
            group, drawn = next(iter(by_group.items()))
            params = {k: torch.cat([q[k] for _, q in drawn]) for k in drawn[0][1]}
            return TRANSFORMS[group][1](flat, params, self.params).view_as(x)
        out = torch.empty_like(flat)
        for group, drawn in by_group.items():
            rows = torch.cat([torch.arange(m * batch, (m + 1) * batch, device=x.device) for m, _ in drawn])
            params = {k: torch.cat([q[k] for _, q in drawn]) for k in drawn[0][1]}
            out = out.index_put((rows,), TRANSFORMS[group][1](flat[rows], params, self.params))
        return out.view_as(x)

    def __repr__(self) -> str:
        return f"DSA('{self.strategy}')"
