"""DD on real digits: torch.func unrolling is exact, the learned schedule beats its noise start."""
from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from ddbench.methods.dd import unrolled_objective

from ddbench.cli import main
from ddbench.data import load_dataset
from ddbench.distill.registry import create_method
from ddbench.engine.unroll import FlatNetwork
from ddbench.kinds import load_protocol
from ddbench.sweep.evaluate import distill_cached, evaluate_method, evaluate_set

CARDS = Path(__file__).parent / "cards"


def test_torch_func_unrolling_matches_autograd_and_finite_differences():
    torch.manual_seed(0)
    student = FlatNetwork("convnetd1", 10, 1, 8)
    student.base = student.base.to(torch.float64)
    w0 = torch.randn(student.numel, dtype=torch.float64) * 0.05
    images = torch.randn(20, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    labels = torch.arange(10).repeat(2)
    raw = torch.full((6,), -3.0, dtype=torch.float64, requires_grad=True)
    x_real, y_real = torch.randn(16, 1, 8, 8, dtype=torch.float64), torch.arange(16) % 10

    g_img, g_raw = torch.autograd.grad(unrolled_objective(student, images, labels, raw, 2, w0, x_real, y_real), [images, raw])

    def reference(imgs, raw_lrs):  # the same schedule with plain autograd double-backward
        w = w0.clone().requires_grad_(True)
        for t, lr in enumerate(F.softplus(raw_lrs)):
            k = t % 2
            loss = F.cross_entropy(student(w, imgs[k * 10 : (k + 1) * 10]), labels[k * 10 : (k + 1) * 10])
            (g,) = torch.autograd.grad(loss, w, create_graph=True)
            w = w - lr * g
        return F.cross_entropy(student(w, x_real), y_real)

    r_img, r_raw = torch.autograd.grad(reference(images, raw), [images, raw])
    torch.testing.assert_close(g_img, r_img)
    torch.testing.assert_close(g_raw, r_raw)
    direction, eps = torch.randn_like(images), 1e-6
    with torch.no_grad():
        plus = unrolled_objective(student, images + eps * direction, labels, raw, 2, w0, x_real, y_real)
        minus = unrolled_objective(student, images - eps * direction, labels, raw, 2, w0, x_real, y_real)
    assert torch.allclose((g_img * direction).sum(), (plus - minus) / (2 * eps), rtol=1e-4)


@pytest.fixture(scope="module")
def native_results(tmp_path_factory):
    """DD on digits (its digits budget) and its own starting point (epochs = 0), both replayed natively."""
    from ddbench.store.results import ResultStore
    from ddbench.sweep.evaluate import EvalOptions

    card = load_protocol(str(CARDS / "digits-dd-native.toml"))
    opts = EvalOptions(device=torch.device("cpu"), store=ResultStore(tmp_path_factory.mktemp("lb")), progress=False)
    learned = evaluate_method(create_method("dd"), card, opts)
    start = evaluate_method(create_method("dd", epochs=0), card, opts)
    return {"learned": [r["accuracy"] for r in learned], "start": [r["accuracy"] for r in start]}


def test_dd_beats_its_noise_initialisation(native_results):
    """Measured (20 random ConvNet-1 inits, CPU): learned 88.1 ± 1.1; its noise start 7.9 ± 2.8 (chance 10)."""
    learned, start = statistics.mean(native_results["learned"]), statistics.mean(native_results["start"])
    assert len(native_results["learned"]) == 20
    assert learned > 75.0 and learned > start + 40.0, (learned, start)


def test_a_killed_dd_distillation_resumes_from_its_saved_epoch_to_the_same_set(opts, killed_and_resumed):
    card = load_protocol(str(CARDS / "digits-ipc1.toml"))  # random inits: a fresh network drawn every iteration
    # five Adam steps per epoch (1,257 images, batches of 256): killed in the third epoch, two saved
    reference, resumed, saved, all_steps, rest, task = killed_and_resumed(
        create_method("dd", epochs=4), card, load_dataset("digits"), opts, kill_at_step=12, optimizer=torch.optim.Adam)
    assert saved == 2 and all_steps == 20 and rest == 10 and "resumes after 2 epochs" in task.label
    torch.testing.assert_close(resumed.images, reference.images, rtol=0, atol=0)
    torch.testing.assert_close(resumed.aux["step_lrs"], reference.aux["step_lrs"], rtol=0, atol=0)
    assert resumed.extra["final_loss"] == reference.extra["final_loss"] and resumed.extra["resumed_after"] == 2


def test_a_snapshot_asked_for_before_the_saved_state_distils_afresh(opts, killable, monkeypatch):
    from ddbench.engine import resume
    from ddbench.sweep.evaluate import set_cache_path, snapshot_path

    monkeypatch.setattr(resume, "RESUME_EVERY_S", 0.0)
    card, train, method = load_protocol(str(CARDS / "digits-ipc1.toml")), load_dataset("digits"), create_method("dd", epochs=4)
    killable(lambda: distill_cached(method, card, train, 0, opts), 12, torch.optim.Adam)  # two epochs saved
    opts.snapshots = (1,)  # epoch 1's set was never written: the saved state cannot give it
    _, steps = killable(lambda: distill_cached(method, card, train, 0, opts), None, torch.optim.Adam)
    assert steps == 20 and snapshot_path(set_cache_path(method, card, train, 0, opts), 1).is_file()


def test_fixed_init_sets_replay_their_own_initialisation(opts):
    card = load_protocol(str(CARDS / "digits-dd-native-fixed.toml"))
    dset = distill_cached(create_method("dd", epochs=3), card, load_dataset("digits"), 0, opts)
    assert dset.extra["dd"]["init"] == "fixed" and "init_params" in dset.aux and len(dset.aux["step_lrs"]) == 3
    rows = evaluate_set(dset, card, opts)
    assert len({r["accuracy"] for r in rows}) == 1  # the same network every time


def test_dd_sets_on_standard_cards_and_refusals(opts, tmp_path, capsys):
    quick = load_protocol("digits-quick").with_overrides(epochs=20)
    opts.seeds = 1
    rows = evaluate_method(create_method("dd", epochs=1), quick, opts)
    assert rows and rows[0]["lr"] == 0.01 and rows[0]["method"] == "dd"
    random_set = tmp_path / "random.safetensors"
    assert main(["distill", "--method", "random", "--protocol", "digits-quick", "--out", str(random_set), "--no-progress"]) == 0
    capsys.readouterr()
    code = main(["evaluate", "--distilled", str(random_set), "--protocol", str(CARDS / "digits-dd-native.toml"),
                 "--results", str(tmp_path / "lb"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "not a DD set" in err[-1] and len([e for e in err if e.startswith("ddbench: error")]) == 1


def test_snapshots_are_the_run_cut_short_and_never_replace_the_result(tmp_path, capsys):
    from ddbench.store.distilled import DistilledSet

    card = str(CARDS / "digits-dd-native-fixed.toml")
    out = tmp_path / "dd.safetensors"
    args = ["distill", "--method", "dd", "--protocol", card, "--cfg", "epochs=3", "--no-progress"]
    assert main([*args, "--out", str(out), "--snapshots", "2,1"]) == 0
    final, step1, step2 = (DistilledSet.load(p) for p in (out, tmp_path / "dd-step1.safetensors", tmp_path / "dd-step2.safetensors"))
    assert step1.extra["snapshot_step"] == 1 and step2.extra["snapshot_step"] == 2 and "snapshot_step" not in final.extra
    assert not torch.equal(step2.images, final.images) and not torch.equal(step1.images, step2.images)
    short = tmp_path / "short.safetensors"  # a 2-epoch run is the 3-epoch run stopped after epoch 2
    assert main(["distill", "--method", "dd", "--protocol", card, "--cfg", "epochs=2", "--no-progress", "--out", str(short)]) == 0
    assert DistilledSet.load(short).set_id == step2.set_id
    lb = tmp_path / "lb"
    assert main(["evaluate", "--distilled", str(tmp_path / "dd-step1.safetensors"), "--protocol", card, "--results", str(lb),
                 "--no-progress"]) == 0
    from ddbench.store.results import ResultStore

    assert {r["snapshot_step"] for r in ResultStore(lb).rows()} == {1}  # kept off the leaderboard
    capsys.readouterr()
    assert main([*args, "--out", str(out), "--snapshots", "5"]) == 2
    assert "no snapshot after 5 steps" in capsys.readouterr().err
    assert main([*args, "--out", str(out), "--snapshots", "two"]) == 2


def _spy_dd(monkeypatch, opts, tmp_path):
    """Record the init seeds DD draws and the real batch sizes it scores, without changing a number."""
    import ddbench.methods.dd as dd

    opts.cache_dir = tmp_path / "own-cache"  # distil for real, never a set cached by another test
    seeds, batches = [], []
    real_inits, real_objective = dd.random_inits, dd.unrolled_objective

    def inits(arch, seed_list, *args, **kw):
        seeds.extend(seed_list)
        return real_inits(arch, seed_list, *args, **kw)

    def objective(student, images, labels, raw_lrs, steps, w0, x_real, y_real):
        batches.append(len(x_real))
        return real_objective(student, images, labels, raw_lrs, steps, w0, x_real, y_real)

    monkeypatch.setattr(dd, "random_inits", inits)
    monkeypatch.setattr(dd, "unrolled_objective", objective)
    return seeds, batches


def test_random_init_distillation_never_trains_on_the_evaluation_networks(monkeypatch, opts, tmp_path):
    """The paper tests on held-out networks: no seed DD trains on may be an evaluation seed."""
    from ddbench.cards.card import MAX_SEEDS

    seeds, batches = _spy_dd(monkeypatch, opts, tmp_path)
    card = load_protocol(str(CARDS / "digits-dd-native.toml"))
    distill_cached(create_method("dd", epochs=1), card, load_dataset("digits"), 0, opts)
    assert len(seeds) == len(batches) + 1  # the (unused) fixed init plus one fresh network per iteration
    assert min(seeds) >= MAX_SEEDS, "a distillation network shares its seed with an evaluation network"
    assert len(set(seeds)) == len(seeds)


def test_every_real_image_is_seen_each_epoch_including_the_last_partial_batch(monkeypatch, opts, tmp_path):
    """1,257 digits in batches of 256: four full batches and one of 233, as the original loader."""
    _, batches = _spy_dd(monkeypatch, opts, tmp_path)
    card = load_protocol(str(CARDS / "digits-dd-native-fixed.toml"))
    distill_cached(create_method("dd", epochs=1), card, load_dataset("digits"), 0, opts)
    assert batches == [256, 256, 256, 256, 233]


def test_the_init_variant_is_part_of_the_identity_of_a_dd_run(opts):
    """Both native cards of one dataset must neither share a set nor record the wrong init."""
    from ddbench.sweep.evaluate import config_hash, set_cache_path

    fixed = load_protocol(str(CARDS / "digits-dd-native-fixed.toml"))
    rand = load_protocol(str(CARDS / "digits-dd-native.toml"))
    dd = create_method("dd")
    assert dd.config_for(fixed)["init"] == "fixed" and dd.config_for(rand)["init"] == "random"
    train = load_dataset("digits")
    assert set_cache_path(dd, fixed, train, 0, opts) != set_cache_path(dd, rand, train, 0, opts)
    assert config_hash("dd", dd.identity_config(fixed)) != config_hash("dd", dd.identity_config(rand))
    dset = distill_cached(create_method("dd", epochs=1), fixed, train, 0, opts)
    assert dset.method_config["init"] == "fixed" and dset.extra["dd"]["init"] == "fixed"
    with pytest.raises(Exception, match="contradicts"):
        create_method("dd", init="random").config_for(fixed)


def test_native_rows_record_the_accuracy_before_training(opts):
    """The paper reports fixed-init MNIST as 12.9% before distilled training and 93.8% after."""
    card = load_protocol(str(CARDS / "digits-dd-native-fixed.toml"))
    dset = distill_cached(create_method("dd", epochs=10), card, load_dataset("digits"), 0, opts)
    for row in evaluate_set(dset, card, opts):  # measured: 12.96% before, 51.11% after 10 epochs
        assert 0.0 <= row["init_accuracy"] < 30.0 < 40.0 < row["accuracy"], row


def test_fixed_init_cards_spread_over_distillations(opts):
    """A fixed-init set trains one network; evaluation seed s evaluates the set distilled with seed s."""
    card = load_protocol(str(CARDS / "digits-dd-native-fixed.toml"))
    rows = evaluate_method(create_method("dd", epochs=2), card, opts)
    assert sorted((r["seed"], r["distill_seed"]) for r in rows) == [(0, 0), (1, 1)]
    assert len({r["set_id"] for r in rows}) == 2 and len({r["run_id"] for r in rows}) == 1
