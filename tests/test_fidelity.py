"""The audit's fidelity findings against the authors' code (MKDT, mix-bt), one test each."""
from __future__ import annotations

import json

import torch

from ddbench.data import load_dataset
from ddbench.kinds import load_protocol


def test_the_teacher_has_no_max_pool_at_any_resolution():
    from ddbench.engine.teacher import teacher_network

    sides = {}
    for size in (32, 64):
        model = teacher_network(3, size)
        assert isinstance(model.maxpool, torch.nn.Identity), size
        sides[size] = model.forward_features(torch.zeros(1, 3, size, size)).shape[-1]
    assert sides[64] > 1.5 * sides[32], sides  # a max-pool at 64 px would halve the map (measured 9 vs 5)


def test_barlow_checkpoints_at_64_px_map_layer_indices_without_a_max_pool(tmp_path):
    """mix-bt's `f` skips the max-pool at every size: f.3 is layer1 at 64 px too."""
    from ddbench.engine.teacher import load_teacher, teacher_network

    model = teacher_network(3, 64)
    order = {"conv1": 0, "bn1": 1, "layer1": 3, "layer2": 4, "layer3": 5, "layer4": 6}
    state = {f"f.{order[k.split('.')[0]]}.{k.split('.', 1)[1]}": v for k, v in model.state_dict().items()}
    torch.save(state, tmp_path / "bt64.pth")
    loaded = load_teacher(tmp_path / "bt64.pth", 3, 64)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


def test_barlow_views_are_made_on_pixels_then_normalised():
    """Every view, mapped back through the normalisation, is an image in [0, 1]; colour (hue included)
    changes; 64 px uses mix-bt's Tiny-ImageNet recipe."""
    from ddbench.engine.barlow import CIFAR_VIEWS, TINY_VIEWS, SSLViews, views_for

    mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    pixels = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    views = SSLViews(CIFAR_VIEWS, mean, std, (3, 32, 32), torch.device("cpu"))
    out = views((pixels - m) / s, torch.Generator().manual_seed(1)) * s + m
    assert out.min() >= -1e-5 and out.max() <= 1 + 1e-5
    assert (out - pixels).abs().mean() > 0.05  # the views differ from the input
    again = views((pixels - m) / s, torch.Generator().manual_seed(1)) * s + m
    assert torch.equal(out, again)  # seeded by our generator, not the global RNG
    assert CIFAR_VIEWS.crop_scale == (0.08, 1.0) and CIFAR_VIEWS.jitter == (0.4, 0.4, 0.4, 0.1)
    assert CIFAR_VIEWS.grayscale_p == 0.2 and TINY_VIEWS.grayscale_p == 0.1 and TINY_VIEWS.colour_first
    assert views_for(32) is CIFAR_VIEWS and views_for(64) is TINY_VIEWS


def test_kd_random_is_class_balanced(opts):
    from ddbench.methods.ssl_baselines import _random_subset

    from ddbench.distill.method import DistillContext
    from ddbench.sweep.evaluate import card_space

    card = load_protocol("digits-ssl-quick")
    train = load_dataset("digits")
    ctx = DistillContext(card=card, device=torch.device("cpu"), seed=0, config={}, space=card_space(card, train),
                         method_name="kd-random", cache_dir=opts.cache_dir, progress=False)
    idx = _random_subset(train, ctx)
    counts = torch.bincount(train.y_train[idx], minlength=10)
    assert len(idx) == card.params.budget and len(set(idx.tolist())) == card.params.budget
    assert counts.max() - counts.min() <= 1, counts.tolist()


def test_ssl_cards_use_the_authors_cifar100_constants_and_tiny_probes_at_32_px():
    from ddbench.data import get_spec

    card = load_protocol("cifar100-ssl-2pct")
    assert card.mean == (0.5071, 0.4865, 0.4409) and card.std == (0.2009, 0.1984, 0.2023)
    assert load_protocol("cifar100-ipc10").mean == ()  # the supervised cards keep the DC family's
    for pct in ("2pct", "5pct"):
        tiny = load_protocol(f"tinyimagenet-ssl-{pct}")
        fine = [d for d in tiny.params.probe.downstream if d not in ("cifar10", "cifar100", "tinyimagenet")]
        assert fine and all(get_spec(d).expected.shape[0] == 32 for d in fine), fine


def test_precision_is_set_by_the_engine_for_library_calls_and_recorded(opts, monkeypatch):
    """fp32 cards turn TF32 off around distillation and evaluation even when the caller left it on."""
    import ddbench.engine.train as train_module
    from ddbench.distill.registry import create_method
    from ddbench.sweep.evaluate import evaluate_method

    seen = []
    real = train_module._train_one

    def spy(*a, **k):
        seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
        return real(*a, **k)

    monkeypatch.setattr(train_module, "_train_one", spy)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    try:
        card = load_protocol("digits-quick").with_overrides(epochs=1)
        opts.seeds, opts.mode = 1, "loop"
        (row,) = evaluate_method(create_method("random"), card, opts)
        assert seen == [(False, False)]
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32  # restored afterwards
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = True
    assert row["precision"] == "fp32" and row["precision_detail"].startswith("cpu")
    tf32 = card.with_overrides(precision="tf32")
    assert not tf32.standard and tf32.hash != card.hash  # another precision is another, non-standard recipe


def test_bf16_runs_evaluation_under_autocast_and_is_marked_non_standard(tmp_path, capsys, monkeypatch):
    """--precision bf16: the evaluation networks' forward passes run in bfloat16 (weights stay float32),
    distillation does not, and the rows say bf16 and are non-standard; fp32 runs see no autocast."""
    import ddbench.engine.train as train_module
    from ddbench.cli import main

    seen = {"eval": set(), "weights": set()}
    real = train_module._train_one

    def spy(model, *a, **k):
        def hook(module, inputs, output):
            seen["eval"].add(output.dtype)
            seen["weights"].update(p.dtype for p in module.parameters())
        handle = model.register_forward_hook(hook)
        try:
            return real(model, *a, **k)
        finally:
            handle.remove()

    monkeypatch.setattr(train_module, "_train_one", spy)
    base = ["evaluate", "--method", "random", "--epochs", "2", "--seeds", "1", "--batch-mode", "loop", "--no-progress"]
    assert main([*base, "--results", str(tmp_path / "a")]) == 0
    assert seen == {"eval": {torch.float32}, "weights": {torch.float32}}
    seen["eval"].clear()
    assert main([*base, "--precision", "bf16", "--results", str(tmp_path / "b")]) == 0
    assert seen == {"eval": {torch.bfloat16}, "weights": {torch.float32}}
    capsys.readouterr()
    (row,) = [json.loads(line) for line in (tmp_path / "b" / "results.jsonl").read_text().splitlines()]
    assert row["precision"] == "bf16" and "bf16 autocast" in row["precision_detail"]
    assert row["protocol_standard"] is False and row["protocol_overrides"]["precision"] == "bf16"
    (fp32,) = [json.loads(line) for line in (tmp_path / "a" / "results.jsonl").read_text().splitlines()]
    assert fp32["precision"] == "fp32" and fp32["protocol_hash"] != row["protocol_hash"]
    from ddbench.publish.leaderboard import summarize

    assert len(summarize([fp32, {**row, "run_id": fp32["run_id"], "protocol_hash": fp32["protocol_hash"]}])) == 2
