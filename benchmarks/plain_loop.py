"""A plain evaluation loop in the style of the original DC/MTT code, as the speed baseline.

Written for the benchmark from the structure of `evaluate_synset` / `epoch` / `DiffAugment` in
VICO-UoE/DatasetCondensation (not copied): a TensorDataset and DataLoader, one network at a time,
augmentation per batch with the random parameters drawn on the CPU and the affine matrices built
from Python lists, and per-batch accuracy bookkeeping through numpy (a device sync per batch).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ddbench.engine.augment import DSAParams


def _plain_dsa(x: torch.Tensor, strategy: str, p: DSAParams) -> torch.Tensor:
    groups = strategy.split("_")
    group = groups[torch.randint(0, len(groups), (1,)).item()]
    n, _, h, w = x.shape
    if group == "color":
        x = x + (torch.rand(n, 1, 1, 1, device=x.device) - 0.5) * p.brightness
        m = x.mean(dim=1, keepdim=True)
        x = (x - m) * (torch.rand(n, 1, 1, 1, device=x.device) * p.saturation) + m
        m = x.mean(dim=[1, 2, 3], keepdim=True)
        return (x - m) * (torch.rand(n, 1, 1, 1, device=x.device) + p.contrast) + m
    if group in ("scale", "rotate"):
        if group == "scale":
            r = p.ratio_scale
            sx = torch.rand(n) * (r - 1.0 / r) + 1.0 / r
            sy = torch.rand(n) * (r - 1.0 / r) + 1.0 / r
            theta = [[[sx[i], 0, 0], [0, sy[i], 0]] for i in range(n)]
        else:
            a = (torch.rand(n) - 0.5) * 2 * p.ratio_rotate / 180 * math.pi
            theta = [[[torch.cos(a[i]), torch.sin(-a[i]), 0], [torch.sin(a[i]), torch.cos(a[i]), 0]] for i in range(n)]
        theta = torch.tensor(theta, dtype=torch.float)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False).to(x.device)
        return F.grid_sample(x, grid, align_corners=False)
    if group == "flip":
        return torch.where(torch.rand(n, 1, 1, 1, device=x.device) < p.prob_flip, x.flip(3), x)
    if group == "crop":
        s = int(h * p.ratio_crop_pad + 0.5)
        tx = torch.randint(-s, s + 1, size=[n, 1, 1], device=x.device)
        ty = torch.randint(-s, s + 1, size=[n, 1, 1], device=x.device)
        gb, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                                    torch.arange(w, device=x.device), indexing="ij")
        gx = torch.clamp(gx + tx + 1, 0, h + 1)
        gy = torch.clamp(gy + ty + 1, 0, w + 1)
        return F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)
    c = int(h * p.ratio_cutout + 0.5)
    ox = torch.randint(0, h + (1 - c % 2), size=[n, 1, 1], device=x.device)
    oy = torch.randint(0, w + (1 - c % 2), size=[n, 1, 1], device=x.device)
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(c, device=x.device),
                                torch.arange(c, device=x.device), indexing="ij")
    gx = torch.clamp(gx + ox - c // 2, min=0, max=h - 1)
    gy = torch.clamp(gy + oy - c // 2, min=0, max=w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


def _epoch(loader, net, optimizer, device, strategy, params, train: bool) -> float:
    net.train() if train else net.eval()
    correct, seen = 0, 0
    for img, lab in loader:
        img, lab = img.float().to(device), lab.long().to(device)
        if train and strategy:
            img = _plain_dsa(img, strategy, params)
        out = net(img)
        loss = F.cross_entropy(out, lab)
        correct += int(np.sum(np.argmax(out.cpu().data.numpy(), axis=-1) == lab.cpu().data.numpy()))
        seen += len(lab)
        if train:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return correct / seen


def plain_evaluate(net, images, labels, test_images, test_labels, epochs, lr, strategy, device) -> float:
    """One network, the original loop: range(epochs + 1) passes, lr × 0.1 after pass epochs // 2 + 1."""
    net = net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=0.0005)
    loader = DataLoader(TensorDataset(images.cpu(), labels.cpu()), batch_size=256, shuffle=True, num_workers=0)
    test_loader = DataLoader(TensorDataset(test_images.cpu(), test_labels.cpu()), batch_size=256, shuffle=False)
    params = DSAParams()
    for ep in range(epochs + 1):
        _epoch(loader, net, optimizer, device, strategy, params, train=True)
        if ep == epochs // 2 + 1:
            lr *= 0.1
            optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=0.0005)
    with torch.no_grad():
        return _epoch(test_loader, net, None, device, None, params, train=False)


def bare_step_seconds(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float = 0.01,
                      momentum: float = 0.9, warmup: int = 3) -> float:
    """Mean wall time of the bare network step on one batch: forward, loss, backward, SGD; no
    augmentation, no data handling; under the evaluation autocast in scope (`ddbench.engine.precision`)."""
    from ddbench.engine.precision import autocast

    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast(x.device):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps
