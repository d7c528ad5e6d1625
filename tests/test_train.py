"""Training loops: stacked (vmap) and one-by-one training follow the same per-seed streams."""
from __future__ import annotations

import torch

from ddbench.augment import DSA
from ddbench.protocol import TrainRecipe
from ddbench.train import Streams, choose_mode, init_network, train_networks


def _data(n: int = 20):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 8, 8, generator=g), torch.arange(n) % 10


def test_init_depends_on_seed_only():
    torch.manual_seed(123)
    a = init_network("convnet", 5, 10, 1, 8)
    torch.manual_seed(456)
    b = init_network("convnet", 5, 10, 1, 8)
    c = init_network("convnet", 6, 10, 1, 8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.classifier.weight, c.classifier.weight)


def test_vmap_and_loop_train_the_same_networks():
    x, y = _data()
    recipe = TrainRecipe(epochs=2, batch_size=8, dsa_strategy="color_crop_cutout_scale_rotate")
    dsa = DSA(recipe.dsa_strategy)
    loop = train_networks("convnet", [0, 1, 2], x, y, "hard", recipe, 0.01, 10, dsa, mode="loop", progress=False)
    vmap = train_networks("convnet", [0, 1, 2], x, y, "hard", recipe, 0.01, 10, dsa, mode="vmap", progress=False)
    assert loop.mode == "loop" and vmap.mode == "vmap"
    for a, b in zip(loop.models, vmap.models):
        for p, q in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_per_seed_datasets_and_callbacks():
    x, y = _data()
    xs, ys = torch.stack([x, x.flip(0)]), torch.stack([y, y.flip(0)])
    done = []
    recipe = TrainRecipe(epochs=1, batch_size=8, augment="none")
    result = train_networks("convnet", [3, 4], xs, ys, "hard", recipe, 0.01, 10, None, mode="vmap",
                            progress=False, per_seed_data=True, on_trained=lambda i, m: done.append(i))
    assert done == [0, 1] and len(result.models) == 2


def test_batchnorm_archs_fall_back_to_the_loop():
    x, y = _data()
    assert choose_mode("vmap", "convnetbn", [0, 1], x, y, "hard", TrainRecipe(), 0.01, 10, None) == "loop"
    assert choose_mode("auto", "convnet", [0], x, y, "hard", TrainRecipe(), 0.01, 10, None) == "loop"


def test_lr_decays_once_after_half_the_epochs(monkeypatch):
    """The original loop: range(E + 1) passes, lr × 0.1 after pass E // 2 + 1, with a fresh optimizer."""
    seen = []
    real_sgd = torch.optim.SGD

    def spy(params, lr, **kw):
        seen.append(lr)
        return real_sgd(params, lr=lr, **kw)

    monkeypatch.setattr(torch.optim, "SGD", spy)
    x, y = _data()
    train_networks("convnet", [0], x, y, "hard", TrainRecipe(epochs=4, augment="none"), 0.05, 10, None,
                   mode="loop", progress=False)
    assert seen == [0.05, 0.05 * 0.1]


def test_streams_are_reproducible():
    a, b = Streams.for_seed(7, torch.device("cpu")), Streams.for_seed(7, torch.device("cpu"))
    assert torch.equal(torch.rand(3, generator=a.device), torch.rand(3, generator=b.device))
