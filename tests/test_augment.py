"""DSA: the original transforms, batched per model from per-seed streams, differentiable."""
from __future__ import annotations

import pytest
import torch

from ddbench.engine.augment import DSA, DSAParams, apply_crop, apply_cutout, apply_flip, draw_crop


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
    assert torch.equal(a, b)  # the streams decide everything: no global RNG is drawn
    assert not torch.equal(a, x) and not torch.equal(a, DSA("color_crop")(x, *gens(2)))  # and they do change the images
    assert torch.equal(DSA("none")(x), x)
    with pytest.raises(ValueError, match="unknown DSA group"):
        DSA("color_jitter")


def _ramp(n: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An image whose value is the normalised x coordinate of each pixel centre (align_corners=False)."""
    coords = (torch.arange(n) * 2 + 1) / n - 1
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    return xs.clone().view(1, 1, n, n), xs, ys


def test_color_follows_the_published_formulas():
    """ParamDiffAug: x + (b − 0.5)·1; saturation (x − mean_c)·(s·2) + mean_c; contrast (x − mean)·(c + 0.5) + mean."""
    from ddbench.engine.augment import apply_color

    x = torch.tensor([[[[0.0, 1.0]], [[2.0, 3.0]], [[4.0, 8.0]]]])  # 1 image, 3 channels, 1×2
    q = {"brightness": torch.tensor([0.7]), "saturation": torch.tensor([0.25]), "contrast": torch.tensor([0.1])}
    b = x + 0.2
    mean_c = b.mean(1, keepdim=True)
    s = (b - mean_c) * 0.5 + mean_c
    want = (s - s.mean()) * 0.6 + s.mean()
    torch.testing.assert_close(apply_color(x, q, DSAParams()), want)
    # a hand-computed value: pixel (channel 0, column 0)
    assert abs(want[0, 0, 0, 0].item() - (((0.2 - 2.2) * 0.5 + 2.2 - 3.2) * 0.6 + 3.2)) < 1e-6


def test_scale_maps_u_to_a_factor_between_one_over_r_and_r():
    """factor = u·(r − 1/r) + 1/r (r = 1.2): the sampling grid is stretched by it, so a linear ramp is
    multiplied by the factor at interior pixels; the u that gives factor 1 is the identity."""
    from ddbench.engine.augment import apply_scale

    x, xs, _ = _ramp()
    r = DSAParams().ratio_scale
    out = apply_scale(x, {"sx": torch.tensor([1.0]), "sy": torch.tensor([1.0])}, DSAParams())
    inner = slice(5, 11)
    torch.testing.assert_close(out[0, 0, inner, inner], (xs * r)[inner, inner], atol=1e-5, rtol=1e-5)
    u_identity = torch.tensor([(1 - 1 / r) / (r - 1 / r)])
    torch.testing.assert_close(apply_scale(x, {"sx": u_identity, "sy": u_identity}, DSAParams()), x, atol=1e-5, rtol=1e-5)


def test_rotate_turns_by_up_to_fifteen_degrees():
    """angle = (u − 0.5)·2·15°: u = 1 rotates a ramp x into cos(15°)·x − sin(15°)·y at interior pixels."""
    import math

    from ddbench.engine.augment import apply_rotate

    x, xs, ys = _ramp()
    out = apply_rotate(x, {"u": torch.tensor([1.0])}, DSAParams())
    a = math.radians(15)
    inner = slice(5, 11)
    torch.testing.assert_close(out[0, 0, inner, inner], (math.cos(a) * xs - math.sin(a) * ys)[inner, inner], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(apply_rotate(x, {"u": torch.tensor([0.5])}, DSAParams()), x, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("group", ["color", "crop", "cutout", "flip", "scale", "rotate"])
def test_every_group_changes_its_input(group):
    x = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = DSA(group)(x, *gens(3))
    assert out.shape == x.shape and (out - x).abs().mean() > 1e-3, group


def test_one_channel_images_keep_plain_nchw_strides():
    """A channels-last layout sneaking in (as the indexed crop once did for 1-channel images) sends the
    network to channels-last kernels: 2.5-2.9x slower under bf16 on a CPU (benchmarks/bench_layout.py)."""
    import numpy as np

    from ddbench.data.base import to_nchw

    plain = (28 * 28, 28 * 28, 28, 1)
    assert to_nchw(np.zeros((4, 28, 28, 1), np.uint8)).stride() == plain
    x = torch.randn(4, 1, 28, 28)
    for group in ("color", "crop", "cutout", "scale", "rotate"):
        dsa = DSA(group)
        assert dsa(x, *gens(0)).stride() == plain, group
        assert dsa.stacked(x.unsqueeze(0).expand(2, -1, -1, -1, -1), [gens(0)[0], gens(1)[0]],
                           [gens(0)[1], gens(1)[1]])[0].stride() == plain, group


@pytest.mark.parametrize("channels", [1, 3])
def test_crop_equals_the_original_indexed_crop(channels):
    """The gather crop gives DSA's original indexed crop (pad, NHWC index, permute back): values and gradients."""
    x = torch.randn(20, channels, 12, 10, requires_grad=True)
    q = draw_crop(20, x.shape, DSAParams(), torch.Generator().manual_seed(1), x.device)
    n, _, h, w = x.shape
    rows = (torch.arange(h).view(1, h, 1) + q["tx"].view(n, 1, 1) + 1).clamp(0, h + 1)
    cols = (torch.arange(w).view(1, 1, w) + q["ty"].view(n, 1, 1) + 1).clamp(0, w + 1)
    original = torch.nn.functional.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)[torch.arange(n).view(n, 1, 1), rows, cols]
    original = original.permute(0, 3, 1, 2)
    ours = apply_crop(x, q, DSAParams())
    weights = torch.randn_like(ours)
    assert torch.equal(ours, original) and (q["tx"] != 0).any()
    assert torch.equal(*(torch.autograd.grad((out * weights).sum(), x)[0] for out in (ours, original)))
