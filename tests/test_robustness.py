"""DD-Ranking's robustness scores: the formulas on known accuracies, and digits scores for three methods."""
from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
import torch

from ddbench.distill.registry import create_method
from ddbench.kinds import load_protocol
from ddbench.publish.leaderboard import render
from ddbench.store.results import ResultStore
from ddbench.sweep.evaluate import EvalOptions
from ddbench.sweep.robustness import aug_robust_score, label_robust_score, normalise, robustness_rows

CARD = Path(__file__).parent / "cards" / "digits-ipc1.toml"


def test_the_formulas_on_known_accuracies():
    assert normalise(-1.0) == 0.0 and normalise(1.0) == pytest.approx(1.0) and normalise(0.0) == pytest.approx(
        (1 - math.exp(-1)) / (math.e - math.exp(-1)))
    s = label_robust_score(acc_set=0.60, acc_random=0.30, acc_full=0.90, acc_set_hard=0.50)
    assert s["ior"] == pytest.approx(0.30) and s["hlr"] == pytest.approx(0.40)
    assert s["lrs"] == pytest.approx((math.exp(0.5 * 0.30 - 0.5 * 0.40) - math.exp(-1)) / (math.e - math.exp(-1)))
    a = aug_robust_score(set_aug=0.60, random_aug=0.30, set_plain=0.50, random_plain=0.40)
    assert a["ars"] == pytest.approx(normalise(0.5 * 0.30 + 0.5 * 0.10))
    assert label_robust_score(1.0, 0.0, 1.0, 1.0)["lrs"] == pytest.approx(normalise(0.5))
    assert label_robust_score(0.0, 1.0, 1.0, 0.0)["lrs"] == pytest.approx(0.0)  # the worst case maps to 0
    with pytest.raises(ValueError, match="fractions"):
        label_robust_score(60.0, 30.0, 90.0, 50.0)  # DD-Ranking's percentages are refused


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    """random, herding and MTT on the digits IPC 1 test card (50 epochs, 2 seeds)."""
    card = load_protocol(str(CARD)).with_overrides(epochs=50)
    root = tmp_path_factory.mktemp("robust")
    opts = EvalOptions(device=torch.device("cpu"), store=ResultStore(root / "lb"), seeds=2, progress=False, cache_dir=root / "cache")
    return {m: robustness_rows(create_method(m), card, opts) for m in ("random", "herding", "mtt")}, opts


def test_scores_lie_in_the_unit_interval_and_order_methods_by_accuracy(scores):
    records, _ = scores
    assert all(r["record"] == "robustness" and "accuracy" not in r for rs in records.values() for r in rs)  # not accuracy rows
    rows = {m: [{**r["scores"], **r["inputs"], "seed": r["seed"]} for r in rs] for m, rs in records.items()}
    mean = {m: {k: statistics.mean(r[k] for r in rs) for k in ("accuracy", "lrs", "ars", "ior")} for m, rs in rows.items()}
    print({m: {k: round(v, 4) for k, v in d.items()} for m, d in mean.items()})
    assert all(0.0 <= r[k] <= 1.0 for rs in rows.values() for r in rs for k in ("lrs", "ars"))
    assert all(r["ior"] == 0.0 for r in rows["random"])  # the random subset against itself, seed by seed
    by_acc = sorted(mean, key=lambda m: mean[m]["accuracy"])
    assert sorted(mean, key=lambda m: mean[m]["lrs"]) == by_acc
    assert mean["herding"]["accuracy"] > mean["random"]["accuracy"] and mean["herding"]["lrs"] > mean["random"]["lrs"]
    assert len({r["full_data_accuracy"] for rs in rows.values() for r in rs}) == 1  # one full-data network per (dataset, arch)
    assert all(r["random_distill_seed"] == r["seed"] for rs in rows.values() for r in rs)


def test_scores_are_rows_and_leaderboard_columns(scores):
    rows, opts = scores
    stored = [r for r in opts.store.rows() if r.get("task") == "robust"]
    assert len(stored) == 3 * 2 and all(r["record"] == "robustness" and {"lrs", "ars"} <= set(r["scores"]) for r in stored)
    again = robustness_rows(create_method("random"), load_protocol(str(CARD)).with_overrides(epochs=50), opts)
    assert len([r for r in opts.store.rows() if r.get("task") == "robust"]) == 6 and len(again) == 2  # no duplicates
    from ddbench.publish.leaderboard import Citations, published_lookup, ranked_table, robustness_columns, summarize

    card = load_protocol(str(CARD))
    columns = robustness_columns(opts.store.rows())
    summary = summarize([r for r in opts.store.rows() if r["protocol"] == card.id and r.get("protocol_overrides") == {"epochs": 50}
                         and r.get("label_mode") == "hard" and r["epochs"] == 50 and r.get("task", "") in ("", "robust")])
    pub, recipes = published_lookup()
    headers, table = ranked_table(card, summary, pub, Citations(recipes), scores=columns)
    assert headers[-2:] == ["LRS", "ARS"] and all(row[-1] != "—" for row in table if row[2] in ("random", "herding", "mtt"))
    assert "LRS / ARS" in render(opts.store)


def test_plan_shows_every_network_the_scores_need_and_trains_none(tmp_path, capsys, monkeypatch):
    from ddbench.cli import main

    monkeypatch.setenv("DDBENCH_CACHE", str(tmp_path / "cache"))  # nothing trained by earlier tests: every stage planned

    code = main(["robustness", "--method", "herding", "--protocol", str(CARD), "--seeds", "2", "--plan",
                 "--results", str(tmp_path / "lb"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    stages = {line.split("|")[1].strip(): int(line.split("|")[2]) for line in out.splitlines()
              if line.startswith("| ") and not line.startswith("| stage")}
    # herding and random, each under the card and without augmentation; one full-data network for the one arch
    assert stages["evaluate"] == 4 and stages["fulldata"] == 1, out
    hours = {line.split("|")[1].strip(): float(line.split("|")[5]) for line in out.splitlines()
             if line.startswith("| ") and not line.startswith("| stage")}
    # the full-data network is herding's selection network (same recipe, data, arch and seed: one file): trained once,
    # by the selection task; the full-data task only tests it
    assert hours["fulldata"] < hours["selection"] / 50, out
    assert not (tmp_path / "lb" / "results.jsonl").exists()

    # an interrupted training of that network (half its epochs saved) is planned at the half it has left
    from ddbench.data import load_dataset
    from ddbench.engine.realtrain import real_network_path, resume_path
    from ddbench.sweep.options import card_space
    from ddbench.sweep.robustness import FULL_DATA_RECIPE

    card = load_protocol(str(CARD))
    train = load_dataset(card.dataset)
    network = real_network_path(card.archs[0], train, card_space(card, train), FULL_DATA_RECIPE, 0, tmp_path / "cache")
    network.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epochs_done": FULL_DATA_RECIPE.epochs // 2}, resume_path(network))
    assert main(["robustness", "--method", "herding", "--protocol", str(CARD), "--seeds", "2", "--plan",
                 "--results", str(tmp_path / "lb"), "--no-progress"]) == 0
    resumed = {line.split("|")[1].strip(): float(line.split("|")[5]) for line in capsys.readouterr().out.splitlines()
               if line.startswith("| ") and not line.startswith("| stage")}
    assert resumed["selection"] == pytest.approx(hours["selection"] / 2, rel=0.1)
    # and where no coreset trains it (random's robustness), the full-data task trains it, from the same saved state
    assert main(["robustness", "--method", "random", "--protocol", str(CARD), "--seeds", "2", "--plan",
                 "--results", str(tmp_path / "lb"), "--no-progress"]) == 0
    alone = {line.split("|")[1].strip(): float(line.split("|")[5]) for line in capsys.readouterr().out.splitlines()
             if line.startswith("| ") and not line.startswith("| stage")}
    assert "selection" not in alone and alone["fulldata"] == pytest.approx(hours["selection"] / 2, rel=0.1)
