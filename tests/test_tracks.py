"""The adversarial and privacy tracks (issue 23): the library's PGD equals a hand-written one, the privacy sanity
ordering holds on real data, typos are refused, and a set without real provenance gets no source-level number."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ddbench.core.errors import DDBenchError
from ddbench.data import load_dataset
from ddbench.data.space import ImageSpace
from ddbench.distill.registry import create_method
from ddbench.engine.attacks import InPixelSpace
from ddbench.engine.augment import DSA
from ddbench.engine.membership import example_losses, fixed_sample, loss_attack
from ddbench.engine.train import train_networks
from ddbench.kinds import load_protocol
from ddbench.kinds.privacy import NOT_APPLICABLE
from ddbench.store.distilled import DistilledSet
from ddbench.sweep.build import Request, build_sweep
from ddbench.sweep.evaluate import evaluate_method, evaluate_set

art = pytest.importorskip("art")  # the `adv` extra; CI installs it through .[test]
CARDS = Path(__file__).parent / "cards"


def _digits_network(images: int = 10, epochs: int = 100, seed: int = 0):
    """A ConvNet-1 trained on `images` real digits per class (or all of them with images=0), and its space."""
    train = load_dataset("digits")
    card = load_protocol("digits-quick")
    space = ImageSpace(tuple(train.mean), tuple(train.std))
    idx = torch.arange(len(train.x_train)) if images == 0 else torch.cat(
        [fixed_sample(train.indices_of_class(c), images, seed) for c in range(train.num_classes)])
    recipe = dataclasses.replace(card.train, epochs=epochs)
    result = train_networks("convnetd1", [seed], space.from_uint8(train.x_train[idx]), train.y_train[idx], "hard", recipe,
                            recipe.lr, train.num_classes, DSA(recipe.dsa_strategy), mode="loop", progress=False)
    return result.models[0].eval(), space, train, idx


def _hand_pgd(model, x, y, eps: float, step: float, steps: int) -> torch.Tensor:
    """Madry et al.'s L-inf PGD without random start, written out."""
    adv = x.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        grad, = torch.autograd.grad(F.cross_entropy(model(adv), y), adv)
        adv = torch.min(torch.max(adv.detach() + step * grad.sign(), x - eps), x + eps).clamp(0, 1)
    return adv.detach()


def test_the_librarys_pgd_equals_a_hand_written_pgd_on_one_network():
    from art.attacks.evasion import ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier

    model, space, train, _ = _digits_network()
    wrapped = InPixelSpace(model, space).eval()
    x, y = train.x_test[:300].float() / 255.0, train.y_test[:300]
    classifier = PyTorchClassifier(wrapped, torch.nn.CrossEntropyLoss(), tuple(x.shape[1:]), 10, clip_values=(0.0, 1.0),
                                   device_type="cpu")
    ours = torch.from_numpy(ProjectedGradientDescentPyTorch(classifier, eps=0.1, eps_step=0.02, max_iter=10, num_random_init=0,
                                                            batch_size=300, verbose=False).generate(x.numpy(), y.numpy()))
    hand = _hand_pgd(wrapped, x, y, 0.1, 0.02, 10)
    same = (ours - hand).abs() < 1e-5
    assert same.float().mean() > 0.99, same.float().mean()  # equal but for float ties in the gradient's sign
    with torch.no_grad():
        acc = [float((wrapped(a).argmax(1) == y).float().mean()) for a in (x, ours, hand)]
    assert acc[0] > 0.8 and acc[1] == pytest.approx(acc[2], abs=0.01) and acc[1] < acc[0] - 0.2, acc


def test_adversarial_rows_are_supervised_rows_with_attack_accuracies(opts):
    card = load_protocol("digits-adv-quick").with_overrides(epochs=100)
    rows = evaluate_method(create_method("random"), card, dataclasses.replace(opts, seeds=2))
    for row in rows:
        adv = row["adversarial"]
        acc = adv["accuracy"]
        assert acc["clean"] > 70 and acc["fgsm"] <= acc["clean"] and acc["pgd"] <= acc["fgsm"] + 1 and acc["apgd_ce"] <= acc["pgd"] + 1
        assert adv["library"].startswith("adversarial-robustness-toolbox ") and adv["recipe"]["eps"] == 0.1
        assert adv["n_attacked"] == 300 and set(adv["seconds"]) == {"clean", "fgsm", "pgd", "apgd_ce"}


def test_the_plan_prices_an_adversarial_network_with_its_recorded_attacks(opts):
    """--plan's history: a row's training time plus its attacks' recorded seconds (the attacks outlast the training)."""
    card = load_protocol("digits-adv-quick").with_overrides(epochs=20)
    rows = evaluate_method(create_method("random"), card, dataclasses.replace(opts, seeds=1))
    per_network = rows[0]["wall_time_s"] + sum(rows[0]["adversarial"]["seconds"].values())
    sweep = build_sweep([Request(card, method=create_method("random"))], dataclasses.replace(opts, seeds=3))
    todo = [t for t in sweep.graph.order() if t.stage == "evaluate" and not t.done]
    assert [t.action.seeds for t in todo] == [[1, 2]]
    assert todo[0].seconds == pytest.approx(2 * per_network) and per_network > 2 * rows[0]["wall_time_s"]


def test_a_random_subset_leaks_its_own_images_at_ipc_1(opts):
    """Source level: a network trained on 10 real images for 300 epochs fits them far better than any other."""
    card = load_protocol(str(CARDS / "digits-ipc1-privacy.toml"))
    rows = evaluate_method(create_method("random"), card, dataclasses.replace(opts, seeds=2))
    for row in rows:
        source = row["privacy"]["source"]
        # measured: loss AUC 0.99; calibrated 0.78 (two shadows on 10 images each are weak references)
        assert source["loss"]["auc"] > 0.9 and source["calibrated"]["auc"] > 0.6, source
        assert source["loss"]["n_members"] == 10


def test_a_network_on_all_the_data_leaks_more_than_one_on_ten_per_class():
    """Population level: members are the training images, non-members test images. On digits a network on all 1,257
    images generalises so well that no attack tells them apart (measured: loss AUC 0.52 with and without DSA), so
    "all the data" is a 300-image training set here, trained without augmentation: its network has a generalisation
    gap, and one trained on 10 images per class (nearly none of them members) must leak less."""
    train = load_dataset("digits")
    whole = fixed_sample(torch.arange(len(train.x_train)), 300, 1)
    outsiders = fixed_sample(torch.arange(len(train.x_test)), 300, 2)
    card = load_protocol("digits-quick")
    space = ImageSpace(tuple(train.mean), tuple(train.std))
    auc = {}
    for name, idx in (("whole", whole), ("ipc10", torch.cat([fixed_sample(train.indices_of_class(c), 10, 0) for c in range(10)]))):
        recipe = dataclasses.replace(card.train, epochs=300, augment="none")
        model = train_networks("convnetd1", [0], space.from_uint8(train.x_train[idx]), train.y_train[idx], "hard", recipe,
                               recipe.lr, 10, None, mode="loop", progress=False).models[0].eval()
        m = example_losses(model, space.from_uint8(train.x_train[whole]), train.y_train[whole])
        n = example_losses(model, space.from_uint8(train.x_test[outsiders]), train.y_test[outsiders])
        auc[name] = loss_attack(m, n)["auc"]
    print(auc)
    assert auc["whole"] > auc["ipc10"] + 0.03 and abs(auc["ipc10"] - 0.5) < 0.1, auc  # measured 0.586 and 0.538


def test_a_set_without_real_provenance_gets_no_source_number(opts):
    card = load_protocol("digits-privacy-quick").with_overrides(epochs=50)
    train = load_dataset("digits")
    space = ImageSpace(tuple(train.mean), tuple(train.std))
    gen = torch.Generator().manual_seed(0)
    dset = DistilledSet(images=torch.randn(100, 1, 8, 8, generator=gen), labels=torch.arange(10).repeat_interleave(10),
                        label_mode="hard", num_classes=10, dataset="digits", ipc=10, method="noise", space=space)
    rows = evaluate_set(dset, card, dataclasses.replace(opts, seeds=1))
    assert rows[0]["privacy"]["source"] == NOT_APPLICABLE
    assert {"loss", "calibrated"} <= set(rows[0]["privacy"]["population"])


@pytest.mark.parametrize("change, message", [
    ("[attack]\nepz = 0.1\n", "unknown key"),
    ("[attack]\neps = 8\n", "attack.eps must be in"),
])
def test_an_adversarial_card_typo_is_refused(tmp_path, change, message):
    path = tmp_path / "bad.toml"
    path.write_text(f'include = "digits-quick"\nid = "bad"\nversion = 1\nkind = "adversarial"\n{change}')
    with pytest.raises(DDBenchError, match=message):
        load_protocol(str(path))


def test_a_privacy_card_typo_is_refused(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('include = "digits-quick"\nid = "bad"\nversion = 1\nkind = "privacy"\n[membership]\nshadow = 2\n')
    with pytest.raises(DDBenchError, match="unknown key"):
        load_protocol(str(path))


def test_the_tracks_are_ranked_and_summarised_on_the_leaderboard_and_the_site(opts, tmp_path):
    """Rows of the digits quick cards, relabelled as full MNIST track cards for two methods and five seeds: each card
    ranks every measurement as a task with the accuracy's statistics, and the dataset gets its method × (clean, PGD,
    MIA AUC) summary, in the markdown and on the site with its plot."""
    from ddbench.publish.leaderboard import render
    from ddbench.publish.site import build_site
    from ddbench.store.results import ResultStore

    quick = dataclasses.replace(opts, seeds=1)
    made = [*evaluate_method(create_method("random"), load_protocol("digits-adv-quick").with_overrides(epochs=30), quick),
            *evaluate_method(create_method("random"), load_protocol("digits-privacy-quick").with_overrides(epochs=30), quick)]
    store = ResultStore(tmp_path / "lb")
    rows = []
    for template in made:
        card = load_protocol("mnist-ipc10-adv" if "adversarial" in template else "mnist-ipc10-privacy")
        for method, shift in (("random", 0.0), ("herding", 5.0)):
            for seed in range(card.seeds):
                row = {**template, "protocol": card.id, "protocol_hash": card.hash, "protocol_standard": True, "dataset": "mnist",
                       "ipc": 10, "method": method, "run_id": f"cfg-{method}", "seed": seed, "protocol_overrides": {}}
                if "adversarial" in row:
                    acc = {k: min(100.0, v + shift + 0.1 * seed) for k, v in row["adversarial"]["accuracy"].items()}
                    row["adversarial"] = {**row["adversarial"], "accuracy": acc}
                rows.append(row)
    store.append(rows)
    text = render(store)
    assert "## mnist-ipc10-adv" in text and "## mnist-ipc10-privacy" in text and "## Beyond accuracy: mnist at IPC 10" in text
    adv_section = text.split("## mnist-ipc10-adv")[1].split("## ")[0]
    for task in ("clean", "fgsm", "pgd", "apgd_ce", "BEARD RR", "BEARD AE", "BEARD CREI"):
        assert f"| {task} " in adv_section
    ranked = [[c.strip() for c in line.split("|")[1:5]] for line in adv_section.splitlines() if line.startswith("| pgd")]
    assert ranked == [["pgd", "1", "herding", "convnetd1"], ["pgd", "2", "random", "convnetd1"]]  # 5 points apart: ranked
    assert "population calibrated: 100(1-AUC)" in text and "source loss: 100(1-AUC)" in text
    summary = text.split("## Beyond accuracy: mnist at IPC 10")[1]
    assert "| herding" in summary and "| random" in summary and "MIA AUC (population)" in summary and "BEARD CREI" in summary
    pages = build_site(store, tmp_path / "site")
    page = (tmp_path / "site" / "mnist.html").read_text()
    assert any(p.name == "mnist.html" for p in pages) and "Beyond accuracy at IPC 10" in page
    assert "clean accuracy of each method against its PGD accuracy" in page  # the plot's alt text


def test_the_attacked_model_sees_exactly_what_the_network_trained_on():
    """Pixels through InPixelSpace give the network's own outputs on the set's space (ZCA included), so ε is in pixels."""
    from ddbench.data.space import ZCA

    model, space, train, _ = _digits_network(epochs=5)
    x = train.x_test[:64]
    zca = ZCA.fit(space.from_uint8(train.x_train), eps=0.1)
    for s in (space, ImageSpace(space.mean, space.std, zca)):
        with torch.no_grad():
            torch.testing.assert_close(InPixelSpace(model, s)(x.float() / 255.0), model(s.from_uint8(x)))


def test_attacks_on_frozen_weights_find_the_same_examples_and_leave_the_network_trainable(monkeypatch):
    """Frozen weights (no weight gradients during the attacks) change the cost, not the adversarial examples."""
    import ddbench.engine.attacks as attacks

    model, space, train, _ = _digits_network(epochs=30)
    x, y = train.x_test[:200].float() / 255.0, train.y_test[:200]
    recipe = attacks.AttackRecipe(eps=0.1, pgd_steps=5, pgd_step_size=0.02, apgd_steps=5, batch_size=100)
    found: dict[bool, list[torch.Tensor]] = {True: [], False: []}
    grads_filled: list[bool] = []
    original = attacks._accuracy

    def record(net, adv, labels, batch, freeze):
        found[freeze].append(adv.clone())
        grads_filled.append(any(p.requires_grad for p in net.parameters()))
        return original(net, adv, labels, batch)

    for freeze in (True, False):
        monkeypatch.setattr(attacks, "_accuracy", lambda *a, freeze=freeze: record(*a, freeze))
        attacks.attack_accuracies(model, space, x, y, recipe, 10, torch.device("cpu"), freeze=freeze)
    assert grads_filled == [False] * 4 + [True] * 4  # frozen inside the attacks; the plain run leaves them on
    for a, b in zip(found[True], found[False]):
        torch.testing.assert_close(a, b)
    assert all(p.requires_grad for p in model.parameters())  # restored afterwards


def test_beard_scores_follow_its_definitions():
    """RR, AE and CREI as BEARD's code defines them (metrics_type "beard", alpha 0.5), on hand-worked numbers."""
    from ddbench.engine.beard import attack_efficiency, beard_scores, crei, robustness_ratio

    assert robustness_ratio(60.0, [30.0, 0.0]) == pytest.approx(25.0)  # 1 − (60 − 15) / (60 − 0)
    assert robustness_ratio(60.0, [45.0, 30.0, 30.0]) == pytest.approx(100 * (1 - 25 / 30))
    assert robustness_ratio(60.0, [20.0, 20.0]) == 0.0 and robustness_ratio(20.0, [20.0]) == 0.0
    assert attack_efficiency(1.0, [2.0, 4.0, 10.0]) == pytest.approx(100 * (16 / 3 - 1) / 9)
    assert crei(30.0, 50.0) == 40.0 and crei(30.0, 50.0, alpha=1.0) == 30.0
    row = {"accuracy": {"clean": 60.0, "fgsm": 30.0, "pgd": 0.0}, "seconds": {"fgsm": 2.0, "pgd": 10.0}}
    assert beard_scores(row) == {"rr": 25.0}  # the clean pass untimed (rows before it was): no AE, no CREI
    timed = beard_scores({**row, "seconds": {"clean": 1.0, "fgsm": 2.0, "pgd": 10.0}})
    assert timed == {"rr": 25.0, "ae": pytest.approx(100 * 5 / 9, abs=1e-4), "crei": pytest.approx(12.5 + 50 * 5 / 9, abs=1e-4)}


def test_shadow_networks_are_trained_once_then_read_from_the_cache(opts, tmp_path, monkeypatch, private_cache):
    """A second process (memory cleared) reads the card's shadows from the cache instead of training them, and scores
    the same; a damaged cache file is trained again."""
    from ddbench.kinds import privacy
    from ddbench.store.results import ResultStore

    card = load_protocol(str(CARDS / "digits-ipc1-privacy.toml")).with_overrides(epochs=40)
    def run(name: str, seeds: int = 1) -> list[dict]:
        privacy._SHADOWS.clear()  # as in a fresh process
        return evaluate_method(create_method("random"), card, dataclasses.replace(opts, seeds=seeds, store=ResultStore(tmp_path / name)))

    def scores(row: dict) -> dict:  # the privacy results without their recorded seconds
        return {k: v for k, v in row["privacy"].items() if k != "seconds"}

    before = set((private_cache / "shadows").glob("*"))
    first, later = run("first", seeds=2)  # the process's second network finds them in memory
    files = sorted(set((private_cache / "shadows").glob(f"{card.id}-convnetd1-*.safetensors")) - before)
    assert len(files) == 1 and first["privacy"]["shadows"] == 2
    assert first["privacy"]["seconds"]["shadows"] > 0 and first["privacy"]["seconds"]["attacks"] > 0
    assert later["privacy"]["seconds"]["shadows"] == 0 and later["privacy"]["shadows"] == 2
    with monkeypatch.context() as patch:
        patch.setattr(privacy.Privacy, "_train_shadows", lambda *a, **k: pytest.fail("the shadows were trained again"))
        (second,) = run("second")
        assert scores(second) == scores(first) and second["privacy"]["seconds"]["shadows"] == 0  # the row says so
    files[0].write_bytes(b"not a safetensors file")
    (third,) = run("third")
    assert scores(third) == scores(first) and third["privacy"]["seconds"]["shadows"] > 0  # trained again, to the same networks
    assert files[0].stat().st_size > 1000


def test_the_summary_shows_each_networks_stronger_membership_attack():
    """At IPC 1 the loss attack finds the source images (AUC 0.99) where the calibrated one, with shadows on 10 images,
    finds less (0.68): the summary must not hide the leak behind the weaker attack."""
    from ddbench.publish.tracks import SUMMARY_HEADERS, track_summary

    def level(loss: float, calibrated: float) -> dict:
        return {"loss": {"auc": loss}, "calibrated": {"auc": calibrated}}

    rows = [{"dataset": "mnist", "ipc": 1, "method": "random", "accuracy": 50.0, "seed": seed,
             "privacy": {"population": level(0.50, 0.52 + 0.02 * seed), "source": level(0.99 - 0.01 * seed, 0.68)}}
            for seed in range(2)]
    table = track_summary(rows, lambda row: row["method"])[("mnist", 1)]
    cells = dict(zip(SUMMARY_HEADERS, table[0]))
    assert cells["MIA AUC (population)"] == "0.530" and cells["MIA AUC (source)"] == "0.985", cells


def test_the_plan_counts_a_privacy_rows_attacks_but_not_its_shadows():
    """The shadows are trained once per card, arch and set size and shared (then read from the cache): the row that
    trained them must not make every later network of the card look as slow."""
    from ddbench.kinds import get_kind

    privacy = get_kind("privacy")
    assert privacy.measure_seconds({"privacy": {"seconds": {"shadows": 800.0, "attacks": 2.5}}}) == 2.5
    assert privacy.measure_seconds({"privacy": {"shadows": 4}}) == 0.0  # rows from before the seconds were recorded
