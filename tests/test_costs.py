"""What a set costs to make and to store: the fields every row carries, on a soft-label set and a method's set, and
the Pareto front the site draws."""
from __future__ import annotations

import pytest
import torch

from ddbench.data import load_dataset
from ddbench.data.space import ImageSpace
from ddbench.distill.registry import create_method
from ddbench.kinds import load_protocol
from ddbench.publish.costs import pareto_front, set_costs, storage_cell
from ddbench.store.distilled import DistilledSet
from ddbench.sweep.evaluate import evaluate_method, evaluate_set

SPACE = ImageSpace((0.5,), (0.25,))


def _soft_set(classes: int, per_class: int, size: int) -> DistilledSet:
    n = classes * per_class
    labels = torch.softmax(torch.randn(n, classes, generator=torch.Generator().manual_seed(0)), dim=1)
    return DistilledSet(images=torch.randn(n, 1, size, size), labels=labels, label_mode="soft", num_classes=classes,
                        dataset="digits", ipc=per_class, method="soft-example", space=SPACE)


def test_storage_counts_images_labels_and_the_real_budget():
    s = _soft_set(10, 2, 8).storage()
    assert (s["image_bytes"], s["label_bytes"], s["aux_bytes"], s["real_bytes"]) == (20 * 64 * 4, 20 * 10 * 4, 0, 20 * 64)
    assert s["total_bytes"] == 5120 + 800 and not s["labels_outweigh_images"]
    heavy = _soft_set(100, 1, 2).storage()  # 100 soft labels of 100 classes outweigh 100 images of 2×2 pixels
    assert heavy["labels_outweigh_images"] and heavy["label_bytes"] == 100 * 100 * 4 > heavy["image_bytes"] == 100 * 4 * 4
    assert storage_cell(heavy["total_bytes"], heavy["real_bytes"], True).endswith("(labels > images)")
    assert storage_cell(5920, 1280, False) == "4.6× real"


def test_rows_carry_the_storage_of_a_soft_set_and_the_cost_of_a_distilled_one(opts, tmp_path):
    card_file = tmp_path / "soft.toml"
    card_file.write_text('id = "digits-soft-test"\nversion = 1\ninclude = "digits-quick"\nipc = 2\nlabels = "soft"\n')
    card = load_protocol(str(card_file)).with_overrides(epochs=5)
    opts.seeds, opts.mode = 1, "loop"
    train = load_dataset("digits")
    soft = _soft_set(10, 2, 8)
    soft.space = ImageSpace(tuple(train.mean), tuple(train.std))
    (row,) = evaluate_set(soft, card, opts)
    assert row["set_storage"]["label_bytes"] == 800 and row["set_storage"]["image_bytes"] == 5120
    assert row["distill_cost"] is None  # a set made elsewhere: its cost is not ours to state
    (made,) = evaluate_method(create_method("random"), card.with_overrides(labels="hard"), opts)
    cost = made["distill_cost"]
    assert cost["distill_s"] >= 0 and cost["device"].startswith("cpu") and cost["peak_mem_kind"] == "process_max_rss"
    assert cost["peak_mem_mb"] > 0 and made["set_storage"]["real_bytes"] == 20 * 64
    table = set_costs([row, made]).set_index("method")
    assert table.loc["random", "cost_s"] == pytest.approx(cost["distill_s"]) and table.loc["random", "total_bytes"] > 0


def test_set_costs_add_the_recorded_artefact_seconds_and_the_front_is_right():
    rows = [{"protocol": "p", "method": "mtt", "run_id": "r", "accuracy": 1.0, "seed": 0,
             "distill_cost": {"distill_s": 10.0, "artefacts": {"experts": {"tasks": 2, "recorded": 2, "seconds": 30.0}}},
             "set_storage": {"total_bytes": 100, "real_bytes": 25}}]
    assert set_costs(rows).loc[0, "cost_s"] == 40.0
    points = [("cheap", 1.0, 50.0), ("dear-better", 10.0, 70.0), ("dear-worse", 10.0, 40.0), ("best", 5.0, 80.0)]
    assert pareto_front(points) == {"cheap", "best"}


def test_a_cost_with_an_unrecorded_artefact_is_published_as_a_lower_bound():
    from ddbench.publish.site import _cost_cells

    base = {"protocol": "p", "accuracy": 1.0, "seed": 0, "set_storage": {"total_bytes": 100, "real_bytes": 100}}
    rows = [{**base, "method": "herding", "run_id": "old", "distill_cost": {"distill_s": 70.0, "artefacts": {
                 "selection": {"tasks": 1, "recorded": 0, "seconds": 0.0}}}},  # a selection network saved without its time
            {**base, "method": "herding", "run_id": "new", "distill_cost": {"distill_s": 70.0, "artefacts": {
                 "selection": {"tasks": 1, "recorded": 1, "seconds": 5000.0}}}}]
    table = set_costs(rows).set_index(["method", "run_id"])
    assert table.loc[("herding", "old"), "unrecorded"] == 1 and table.loc[("herding", "new"), "unrecorded"] == 0
    assert _cost_cells(table, "herding", "old")[0] == "≥ 70.0 (1 artefact(s) unrecorded)"
    assert _cost_cells(table, "herding", "new")[0] == "5070.0"


def test_a_run_made_on_two_devices_shows_each_devices_seconds_never_their_mean():
    from ddbench.publish.site import _cost_cells

    def row(seed: int, device: str, seconds: float, peak: float, kind: str) -> dict:
        return {"protocol": "p", "method": "mtt", "run_id": "r", "accuracy": 1.0, "seed": seed,
                "set_storage": {"total_bytes": 100, "real_bytes": 100},
                "distill_cost": {"distill_s": seconds, "device": device, "peak_mem_mb": peak, "peak_mem_kind": kind}}

    rows = [row(0, "cpu (x86_64, 2 threads)", 3000.0, 9000.0, "process_max_rss"),
            row(1, "cpu (x86_64, 1 threads)", 5000.0, 9000.0, "process_max_rss"),  # one CPU, whatever its threads
            row(2, "NVIDIA H100 80GB HBM3", 100.0, 2000.0, "cuda_max_allocated")]
    (cost,) = set_costs(rows).to_dict("records")
    assert cost["cost_s"] == 4000.0 and cost["cost_device"] == "cpu (x86_64)"  # the device that made most of the sets
    assert cost["distill_peak_mb"] == 9000.0 and cost["peak_kind"] == "process_max_rss"
    assert cost["cost_by_device"] == [("cpu (x86_64)", 4000.0, 0), ("NVIDIA H100 80GB HBM3", 100.0, 0)]
    cells = _cost_cells(set_costs(rows).set_index(["method", "run_id"]), "mtt", "r")
    assert cells[:2] == ["cpu (x86_64): 4000.0; NVIDIA H100 80GB HBM3: 100.0", "9000 (process RSS)"]
    single = set_costs(rows[:2]).to_dict("records")[0]
    assert single["cost_by_device"] == [] and single["cost_s"] == 4000.0
