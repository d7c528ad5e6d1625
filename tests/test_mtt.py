"""MTT on real digits: it beats the images it starts from, reuses its experts, and fails cleanly."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ddbench.cli import main
from ddbench.data import load_dataset
from ddbench.distill.registry import create_method
from ddbench.engine.experts import ExpertRecipe, ensure_experts
from ddbench.engine.memory import saved_for_backward_bytes
from ddbench.engine.train import flat_parameters, init_network
from ddbench.engine.unroll import FlatNetwork, trajectory_matching_loss, unroll
from ddbench.store.distilled import DistilledSet
from ddbench.sweep.evaluate import card_space, distill_cached, evaluate_set

CARD = str(Path(__file__).parent / "cards" / "digits-ipc1.toml")


def test_unrolled_gradients_match_finite_differences():
    torch.manual_seed(0)
    student = FlatNetwork("convnetd1", 10, 1, 8)
    student.base = student.base.to(torch.float64)
    start = torch.randn(student.numel, dtype=torch.float64) * 0.05
    target = start + torch.randn_like(start) * 0.01
    images = torch.randn(10, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    lr = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    labels = torch.arange(10)

    def loss(x, eta):
        return trajectory_matching_loss(unroll(student, start.clone(), x, labels, eta, 3, 5, F.cross_entropy, None,
                                               torch.Generator().manual_seed(0), None), start, target)

    g_img, g_lr = torch.autograd.grad(loss(images, lr), [images, lr])
    direction, eps = torch.randn_like(images), 1e-6
    numeric = (loss(images.detach() + eps * direction, lr) - loss(images.detach() - eps * direction, lr)) / (2 * eps)
    assert torch.allclose((g_img * direction).sum(), numeric, rtol=1e-4)
    numeric_lr = (loss(images.detach(), lr.detach() + eps) - loss(images.detach(), lr.detach() - eps)) / (2 * eps)
    assert torch.allclose(g_lr, numeric_lr, rtol=1e-4)


@pytest.mark.parametrize("dsa", [False, True])
def test_checkpointed_unroll_gives_the_same_gradients_and_keeps_far_less(dsa):
    from ddbench.engine.augment import DSA, STRATEGY_DIGITS

    torch.manual_seed(0)
    student = FlatNetwork("convnetd1", 10, 1, 8)
    start = torch.randn(student.numel) * 0.05
    target = start + torch.randn_like(start) * 0.01
    labels = torch.arange(10).repeat(4)
    results = []
    for checkpoint in (False, True):
        images = torch.randn(40, 1, 8, 8, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
        lr = torch.tensor(0.05, requires_grad=True)
        gen, pick = torch.Generator().manual_seed(2), torch.Generator().manual_seed(3)

        def run():
            final = unroll(student, start.clone(), images, labels, lr, 12, 20, F.cross_entropy,
                           DSA(STRATEGY_DIGITS) if dsa else None, gen, pick, checkpoint=checkpoint)
            return trajectory_matching_loss(final, start, target)

        loss, saved = saved_for_backward_bytes(run)
        loss.backward()
        results.append((loss.detach(), images.grad.clone(), lr.grad.clone(), saved))
    (loss_a, img_a, lr_a, saved_a), (loss_b, img_b, lr_b, saved_b) = results
    assert torch.equal(loss_a, loss_b)
    assert torch.allclose(img_a, img_b, rtol=1e-5, atol=1e-9) and img_a.abs().max() > 0
    assert torch.allclose(lr_a, lr_b, rtol=1e-5)
    assert saved_b < saved_a / 5, (saved_a, saved_b)


def test_checkpointing_is_a_runtime_option_outside_the_run_identity():
    from ddbench.kinds import load_protocol

    card = load_protocol(CARD)
    plain, checkpointed = create_method("mtt"), create_method("mtt", checkpoint="true")
    assert checkpointed.config_for(card)["checkpoint"] is True
    assert plain.identity_config(card) == checkpointed.identity_config(card)
    assert create_method("mkdt", checkpoint=True).identity_config(card) == create_method("mkdt").identity_config(card)


@pytest.mark.parametrize("ipc", [1, 10])
def test_fashion_mnist_tracks_distil_with_mnists_stable_row_not_the_diverging_defaults(ipc):
    """The defaults (start epochs up to 20, lr_lr 1e-5) diverged on Fashion-MNIST IPC 1 at iteration 9."""
    from ddbench.kinds import load_protocol

    mtt = create_method("mtt")
    defaults = {k: v for k, v in mtt.default_cfg.items() if k not in mtt.runtime_cfg}
    for kind in ("", "-adv", "-privacy"):
        config = mtt.identity_config(load_protocol(f"fashion_mnist-ipc{ipc}{kind}"))
        assert config == mtt.identity_config(load_protocol(f"mnist-ipc{ipc}{kind}")) != defaults


def test_expert_trajectories_start_at_the_seeded_init_and_are_cached(tmp_path):
    train = load_dataset("digits")
    space = card_space(__import__("ddbench.kinds", fromlist=["load_protocol"]).load_protocol(CARD), train)
    recipe = ExpertRecipe(epochs=2, dsa_strategy="color_crop_cutout_scale_rotate")
    bank, trained = ensure_experts(2, "convnetd1", train, space, recipe, torch.device("cpu"), tmp_path, progress=False)
    assert trained == 2 and bank.seeds() == [0, 1] and bank.length(0) == 3
    first, last = bank.snapshots(1, 0, 2)
    assert torch.equal(first, flat_parameters(init_network("convnetd1", 1, 10, 1, (8, 8))))
    assert (first - last).norm() > 0
    again, trained_again = ensure_experts(3, "convnetd1", train, space, recipe, torch.device("cpu"), tmp_path,
                                          progress=False)
    assert trained_again == 1 and again.seeds() == [0, 1, 2]


@pytest.fixture(scope="module")
def mtt_and_init(tmp_path_factory):
    """MTT at IPC 1 on digits (the method's digits budget) and the real images it started from."""
    from ddbench.kinds import load_protocol
    from ddbench.store.results import ResultStore
    from ddbench.sweep.evaluate import EvalOptions

    card = load_protocol(CARD)
    train = load_dataset("digits")
    opts = EvalOptions(device=torch.device("cpu"), store=ResultStore(tmp_path_factory.mktemp("lb")), progress=False)
    dset = distill_cached(create_method("mtt"), card, train, 0, opts)
    init = dset.extra["init_indices"]
    start = DistilledSet(images=dset.space.from_uint8(train.x_train[init]), labels=train.y_train[init], label_mode="hard",
                         num_classes=10, dataset="digits", ipc=1, method="mtt-init", space=dset.space)
    accuracy = {name: statistics.mean(r["accuracy"] for r in evaluate_set(s, card, opts))
                for name, s in (("mtt", dset), ("init", start))}
    return dset, accuracy, opts


def test_mtt_beats_its_start_and_every_baseline(mtt_and_init, ipc1_means):
    """Measured (5 seeds, 300 epochs, CPU): MTT 92.6 ± 0.3 vs its real initialisation 67.2 ± 1.2 and the best
    baseline, herding, 88.3 ± 0.5 (same card)."""
    dset, accuracy, _ = mtt_and_init
    assert accuracy["mtt"] > accuracy["init"] + 12.0, accuracy
    best = max(ipc1_means, key=ipc1_means.get)
    assert accuracy["mtt"] > ipc1_means[best] + 1.5, (accuracy, ipc1_means)
    assert dset.learned_lr is not None and 0 < dset.learned_lr < 0.05
    assert dset.extra["loss_last"] < dset.extra["loss_first"]


def test_a_second_run_trains_no_expert(mtt_and_init, card_ipc1, monkeypatch):
    import dataclasses

    import ddbench.engine.experts as experts

    _, _, opts = mtt_and_init
    calls = []
    real = experts.train_trajectories
    monkeypatch.setattr(experts, "train_trajectories", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    shorter = create_method("mtt", iterations=3)
    dset = distill_cached(shorter, dataclasses.replace(card_ipc1, ipc=2), load_dataset("digits"), 0, opts)
    assert calls == [] and len(dset.images) == 20  # a new set, distilled from the cached experts alone


def test_an_mtt_snapshot_is_the_shorter_run(mtt_and_init, card_ipc1):
    import dataclasses

    from ddbench.sweep.evaluate import set_cache_path, snapshot_path

    _, _, opts = mtt_and_init
    card, train = dataclasses.replace(card_ipc1, ipc=2), load_dataset("digits")
    longer = create_method("mtt", iterations=4, checkpoint=True)
    try:
        opts.snapshots = (2,)
        final = distill_cached(longer, card, train, 0, opts)
    finally:
        opts.snapshots = ()
    snap = DistilledSet.load(snapshot_path(set_cache_path(longer, card, train, 0, opts), 2))
    shorter = distill_cached(create_method("mtt", iterations=2), card, train, 0, opts)
    assert snap.set_id == shorter.set_id != final.set_id and snap.extra["snapshot_step"] == 2


def test_a_killed_distillation_goes_on_from_its_saved_iteration_and_ends_with_the_same_set(mtt_and_init, card_ipc1,
                                                                                           killed_and_resumed):
    import dataclasses

    from ddbench.engine.cost import unrolled_steps

    _, _, opts = mtt_and_init
    method = create_method("mtt", iterations=6)  # two SGD steps per iteration: the pixels', the step size's
    # killed between the two steps of iteration 4: its pixels moved, its step size did not; 3 iterations saved
    reference, resumed, saved, all_steps, rest, task = killed_and_resumed(
        method, dataclasses.replace(card_ipc1, ipc=2), load_dataset("digits"), opts, kill_at_step=7)
    assert saved == 3 and all_steps == 12 and rest == 6
    assert "resumes after 3 iterations" in task.label and task.steps == unrolled_steps(3, method.config_for(card_ipc1)["syn_steps"])
    torch.testing.assert_close(resumed.images, reference.images, rtol=0, atol=0)
    assert resumed.learned_lr == reference.learned_lr and resumed.set_id == reference.set_id
    assert resumed.extra["loss_last"] == reference.extra["loss_last"] and resumed.extra["iterations"] == 6
    assert resumed.extra["resumed_after"] == 3 and "resumed_after" not in reference.extra


def test_a_diverging_run_stops_with_one_line_and_writes_nothing(tmp_path, capsys):
    code = main(["evaluate", "--method", "mtt", "--protocol", CARD, "--cfg", "lr_lr=1.0", "--cfg", "iterations=20",
                 "--results", str(tmp_path / "lb"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("ddbench: error: mtt diverged at iteration"), err
    assert not (tmp_path / "lb" / "results.jsonl").exists()
    from ddbench.core.paths import user_cache_root

    assert not any("lr_lr" in json.dumps(DistilledSet.load(p).method_config) and DistilledSet.load(p).method_config["lr_lr"] == 1.0
                   for p in (user_cache_root() / "sets").glob("mtt-*.safetensors"))


def test_zca_sets_carry_their_transform(card_ipc1, opts):
    from ddbench.sweep.evaluate import evaluate_method

    opts.seeds = 1
    rows = evaluate_method(create_method("mtt", zca=True, iterations=2), card_ipc1.with_overrides(epochs=5), opts)
    dset = next(DistilledSet.load(p) for p in (opts.cache_dir / "sets").glob("mtt-*.safetensors")
                if DistilledSet.load(p).method_config.get("zca"))
    assert dset.space.zca is not None and dset.space.mean == (0.0,) and rows[0]["set_id"] == dset.set_id


def test_checkpointed_memory_grows_by_one_parameter_vector_per_step():
    """What autograd keeps per unrolled step: all activations plain, about one parameter vector checkpointed."""
    torch.manual_seed(0)
    student = FlatNetwork("convnetd1", 10, 1, 8)
    start = torch.randn(student.numel) * 0.05
    target = start + torch.randn_like(start) * 0.01
    labels = torch.arange(10).repeat(4)
    saved = {}
    for checkpoint in (False, True):
        for steps in (5, 20):
            images = torch.randn(40, 1, 8, 8, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
            lr = torch.tensor(0.05, requires_grad=True)
            gen, pick = torch.Generator().manual_seed(2), torch.Generator().manual_seed(3)

            def run():
                final = unroll(student, start.clone(), images, labels, lr, steps, 20, F.cross_entropy, None, gen, pick,
                               checkpoint=checkpoint)
                return trajectory_matching_loss(final, start, target)

            saved[checkpoint, steps] = saved_for_backward_bytes(run)[1]
    per_step = {c: (saved[c, 20] - saved[c, 5]) / 15 for c in (False, True)}
    params = student.numel * 4
    # measured: plain 6.7 MB per step (every activation); checkpointed 99 KB (the step's parameter vector, 83 KB, and
    # its batch), so checkpointed memory grows by one parameter vector per step, not by the step's activations
    assert per_step[True] < 1.5 * params < per_step[False] / 20, (per_step, params)
