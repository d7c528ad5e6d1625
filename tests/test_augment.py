"""DSA: the original transforms, batched per model from per-seed streams, differentiable."""
from __future__ import annotations

import pytest
import torch

from ddbench.augment import DSA, DSAParams, apply_crop, apply_cutout, apply_flip, draw_crop


def gens(seed: int):
    return torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 99)


def test_stacked_equals_independent_runs_and_is_differentiable():
    dsa = DSA()
    x = torch.randn(3, 6, 3, 16, 16, requires_grad=True)
    stacked_gens = [gens(s) for s in range(3)]
    single_gens = [gens(s) for s in range(3)]
    for _ in range(12):  # enough draws to hit several groups
        stacked = dsa.stacked(x, [g for g, _ in stacked_gens], [p for _, p in stacked_gens])
        singles = torch.stack([dsa(x[m], *single_gens[m]) for m in range(3)])
        torch.testing.assert_close(stacked, singles)
    stacked.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_crop_translates_and_zero_fills():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = apply_crop(x, {"tx": torch.tensor([1]), "ty": torch.tensor([0])}, DSAParams())
    assert out[0, 0, 0].tolist() == x[0, 0, 1].tolist() and out[0, 0, 3].tolist() == [0, 0, 0, 0]
    q = draw_crop(1000, (1, 1, 32, 32), DSAParams(), torch.Generator().manual_seed(0), torch.device("cpu"))
    assert q["tx"].min() == -4 and q["tx"].max() == 4  # ratio 0.125 of 32 px


def test_cutout_and_flip():
    x = torch.ones(1, 1, 32, 32)
    out = apply_cutout(x, {"ox": torch.tensor([16]), "oy": torch.tensor([16])}, DSAParams())
    assert out.sum() == 32 * 32 - 16 * 16
    img = torch.arange(4.0).view(1, 1, 1, 4)
    assert apply_flip(img, {"u": torch.tensor([0.1])}, DSAParams()).flatten().tolist() == [3, 2, 1, 0]
    assert apply_flip(img, {"u": torch.tensor([0.9])}, DSAParams()).flatten().tolist() == [0, 1, 2, 3]


def test_same_seed_same_augmentation_and_strategy_parsing():
    x = torch.randn(5, 3, 8, 8)
    a = DSA("color_crop")(x, *gens(1))
    b = DSA("color_crop")(x, *gens(1))
    assert torch.equal(a, b)
    assert torch.equal(DSA("none")(x), x)
    with pytest.raises(ValueError, match="unknown DSA group"):
        DSA("color_jitter")
