"""Training loops: stacked (vmap) and one-by-one training follow the same per-seed streams."""
from __future__ import annotations

import pytest
import torch

from ddbench.engine.augment import DSA
from ddbench.engine.recipes import TrainRecipe
from ddbench.engine.train import Streams, choose_mode, init_network, train_networks


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


def test_auto_mode_is_timed_per_precision(monkeypatch):
    """fp32's faster way is not bf16's (MNIST IPC 10: vmap 1.26x slower than the loop at fp32, 1.57x
    under bf16); a bf16 run must time its own choice, not reuse fp32's."""
    from ddbench.engine import train
    from ddbench.engine.precision import precision_scope

    timed: list[str] = []
    monkeypatch.setattr(train, "_MODE_CACHE", {})
    monkeypatch.setattr(train, "_VMAP_WORKS", {})
    monkeypatch.setattr(train, "_train_stacked", lambda *a, **k: timed.append("vmap"))
    monkeypatch.setattr(train, "_train_one", lambda *a, **k: timed.append("loop"))
    x, y = _data()
    recipe = TrainRecipe(epochs=train.SHORT_RECIPE, batch_size=8, augment="none")
    cpu = torch.device("cpu")
    for policy in ("fp32", "fp32", "bf16"):
        with precision_scope(policy, cpu, evaluation=True):
            choose_mode("auto", "convnet", [0, 1], x, y, "hard", recipe, 0.01, 10, None)
    # one stacked trial (does the arch train under vmap at all?), then fp32 timed once (warm + timed), bf16 once
    assert len(train._MODE_CACHE) == 2 and timed.count("vmap") == 1 + 4


def _record_lr_per_step(monkeypatch) -> list[float]:
    """The lr of every optimiser step, read from the optimiser itself (not from how often it is built)."""
    seen: list[float] = []
    real_step = torch.optim.SGD.step

    def step(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    return seen


def test_the_schedule_is_the_original_loop_pass_by_pass(monkeypatch):
    """range(E + 1) passes; lr × 0.1 from the pass after E // 2 + 1 on (fresh momentum), in loop and vmap.
    E = 6: passes 0..6, decay after pass 4, so passes 5 and 6 run at the decayed lr."""
    x, y = _data(20)  # one batch per pass
    recipe = TrainRecipe(epochs=6, augment="none")
    from ddbench.engine import train

    for mode in ("loop", "vmap"):
        monkeypatch.setattr(train, "_vmap_works", lambda *a, **k: True)  # no stacked trial step among the recorded ones
        seen = _record_lr_per_step(monkeypatch)
        train_networks("convnet", [0, 1], x, y, "hard", recipe, 0.05, 10, None, mode=mode, progress=False)
        per_network = [0.05] * 5 + [0.05 * 0.1] * 2
        want = per_network * 2 if mode == "loop" else per_network
        assert seen == want, (mode, seen)
        monkeypatch.undo()


def test_the_sets_learned_lr_is_used_where_the_card_allows_it(monkeypatch, opts):
    from ddbench.data.space import ImageSpace
    from ddbench.kinds import load_protocol
    from ddbench.store.distilled import DistilledSet
    from ddbench.sweep.evaluate import evaluate_set

    g = torch.Generator().manual_seed(0)
    dset = DistilledSet(images=torch.randn(100, 1, 8, 8, generator=g), labels=torch.arange(10).repeat(10), label_mode="hard",
                        num_classes=10, dataset="digits", ipc=10, method="t", space=ImageSpace((0.3,), (0.37,)), learned_lr=0.02)
    card = load_protocol("digits-quick").with_overrides(epochs=2)
    opts.seeds, opts.mode = 1, "loop"
    seen = _record_lr_per_step(monkeypatch)
    (row,) = evaluate_set(dset, card, opts)
    assert set(seen) == {0.02} and row["lr"] == 0.02 and row["learned_lr_used"]
    import dataclasses

    strict = dataclasses.replace(card, train=dataclasses.replace(card.train, use_learned_lr=False), id="digits-quick-fixed-lr")
    seen.clear()
    (row,) = evaluate_set(dset, strict, opts)
    assert set(seen) == {0.01} and row["lr"] == 0.01 and not row["learned_lr_used"]


def test_seeded_streams_are_pinned():
    """The first draws of seed 0's streams: a change here changes every published number."""
    s = Streams.for_seed(0, torch.device("cpu"))
    assert torch.randperm(8, generator=s.device).tolist() == GOLDEN_PERM
    assert torch.randint(6, (4,), generator=s.pick).tolist() == GOLDEN_PICKS


def test_streams_are_reproducible():
    a, b = Streams.for_seed(7, torch.device("cpu")), Streams.for_seed(7, torch.device("cpu"))
    assert torch.equal(torch.rand(3, generator=a.device), torch.rand(3, generator=b.device))


GOLDEN_PERM = [4, 0, 7, 3, 2, 5, 1, 6]  # torch.randperm(8) from seed 0's data stream
GOLDEN_PICKS = [4, 3, 0, 3]  # the first DSA group picks of seed 0 (of 6 groups)


@pytest.mark.parametrize("arch", ["resnet18", "vgg11_dc", "vit_tiny_patch16_224"])
def test_the_stacked_path_trains_resnet_vgg_and_a_vit_or_falls_back_with_one_line(arch, caplog):
    """Two seeds stacked with vmap, two passes, on 32 px images: each arch either trains stacked (and gives the looped
    networks' parameters, up to float reordering) or trains one by one: batch-norm archs by rule (vmap cannot carry
    their running statistics), any other after a single logged line; never an error."""
    from ddbench.engine import train as engine

    engine._VMAP_WORKS.clear()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 3, 32, 32, generator=g), torch.arange(20) % 10
    recipe = TrainRecipe(epochs=1, batch_size=10, augment="none")
    mode = engine.choose_mode("vmap", arch, [0, 1], x, y, "hard", recipe, 0.01, 10, None)
    probe = engine.init_network(arch, 0, 10, 3, (32, 32))
    if mode == "loop" and engine.vmappable(probe):
        assert f"{arch} cannot train stacked" in caplog.text
    assert mode == "vmap" or not engine.vmappable(probe) or "cannot train stacked" in caplog.text
    stacked = engine.train_networks(arch, [0, 1], x, y, "hard", recipe, 0.01, 10, None, mode=mode, progress=False)
    looped = engine.train_networks(arch, [0, 1], x, y, "hard", recipe, 0.01, 10, None, mode="loop", progress=False)
    for a, b in zip(stacked.models, looped.models):
        torch.testing.assert_close(engine.flat_parameters(a), engine.flat_parameters(b), rtol=1e-2, atol=5e-3)


def test_an_arch_that_fails_under_vmap_falls_back_to_the_loop(monkeypatch, caplog):
    from ddbench.engine import train as engine

    engine._VMAP_WORKS.clear()

    def broken(*args, **kwargs):
        raise RuntimeError("vmap: this operator has no batching rule\nsecond line")

    monkeypatch.setattr(engine, "_train_stacked", broken)
    x, y = torch.randn(20, 1, 8, 8), torch.arange(20) % 10
    recipe = TrainRecipe(epochs=1, batch_size=10, augment="none")
    assert engine.choose_mode("vmap", "convnetd1", [0, 1], x, y, "hard", recipe, 0.01, 10, None) == "loop"
    assert caplog.text.count("convnetd1 cannot train stacked (vmap: RuntimeError: vmap: this operator has no batching rule)") == 1
