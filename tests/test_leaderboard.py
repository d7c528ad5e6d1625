"""The leaderboard: per-protocol tables, ranked, with published numbers and their sources."""
from __future__ import annotations

from ddbench.kinds import load_protocol
from ddbench.publish.leaderboard import load_published, render
from ddbench.store.results import REQUIRED_FIELDS, ResultStore


def _row(method, seed, acc, protocol="mnist-ipc10", standard=True, **kw):
    card = load_protocol(protocol)
    row = {k: "x" for k in REQUIRED_FIELDS}
    row.update(method=method, run_id=f"cfg-{method}", protocol=protocol, protocol_hash=card.hash, arch="convnet",
               seed=seed, accuracy=acc, protocol_standard=standard, device="cpu")
    row.update(kw)
    return row


def test_tables_rank_methods_and_quote_published_numbers(tmp_path):
    store = ResultStore(tmp_path)
    store.append([_row("random", 0, 94.0), _row("random", 1, 96.0), _row("herding", 0, 93.0)])
    store.append([_row("random", 2, 10.0, standard=False), _row("herding", 5, 1.0, protocol_hash="stale"),
                  _row("mtt", 0, 99.0, run_id="set-snap", snapshot_step=1000),
                  _row("kcenter", 0, 99.5, data_complete=False)])
    text = render(store)
    assert "## mnist-ipc10" in text
    table = text.split("## mnist-ipc10")[1]
    assert table.index("| random") < table.index("| herding")  # ranked by mean
    assert "95.00 ± 1.00" in table and "95.1 [1]" in table and "-0.1" in table
    assert "Dataset Condensation with Gradient Matching" in text and "300 epochs" in text
    assert "4 row(s) from quick cards, older card versions, shortened recipes, snapshots or partial data are not shown" in text
    assert "| mtt" not in table and "| kcenter" not in table  # a snapshot; a partial copy of MNIST


def test_published_numbers_cover_the_issue_list():
    pub = {(p.protocol, p.method): p.accuracy for p in load_published()[0]}
    assert pub[("cifar10-ipc10", "random")] == 26.0 and pub[("mnist-ipc1", "forgetting")] == 35.5
    assert all(load_protocol(protocol) for protocol, _ in pub)


def test_ranking_orders_rows_inserted_in_reverse(tmp_path):
    store = ResultStore(tmp_path)
    store.append([_row("c-worst", 0, 50.0), _row("b-middle", 0, 70.0), _row("a-best", 0, 90.0)])  # worst first
    table = render(store).split("## mnist-ipc10")[1]
    ranked = [line.split("|")[1:3] for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [(r.strip(), m.strip()) for r, m in ranked] == [("1", "a-best"), ("2", "b-middle"), ("3", "c-worst")]


def test_the_header_names_the_store_it_was_rendered_from(tmp_path):
    store = ResultStore(tmp_path / "elsewhere")
    store.append([_row("random", 0, 94.0)])
    text = render(store)
    assert str(store.path) in text and "`leaderboard/results.jsonl`" not in text


def test_cross_arch_cards_publish_a_method_by_arch_matrix(tmp_path):
    card = load_protocol("cifar10-ipc10-xarch")
    accs = {"convnet": 60.0, "resnet18_dc": 40.0, "vgg11_dc": 45.0, "alexnet_dc": 30.0, "vit_tiny_patch16_224": 25.0}
    store = ResultStore(tmp_path)
    store.append([_row("mtt", s, acc + s, protocol=card.id, arch=arch) for arch, acc in accs.items() for s in (0, 2)])
    store.append([_row("random", s, 20.0 + s, protocol=card.id, arch=arch) for arch in ("convnet", "alexnet_dc") for s in (0, 2)])
    table = render(store).split(f"## {card.id}")[1].split("\n## ")[0]
    lines = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.splitlines() if line.startswith("| ")]
    header, body = lines[0], lines[1:]
    assert header == ["#", "method", *card.archs, "mean over archs", "n (min)", "run"]
    mtt, published, rand = body
    assert mtt[:2] == ["1", "mtt"] and mtt[2] == "61.00 ± 1.00" and mtt[3] == "41.00 ± 1.00 (-20.0)"
    assert mtt[7] == f"{sum(accs.values()) / 5 + 1:.2f}"  # the mean over the five archs
    assert published[1] == "mtt (published)" and published[2].startswith("64.3 [") and published[5].startswith("34.2 [")
    assert published[6] == "—"  # the paper has no ViT column
    assert rand[:2] == ["2", "random"] and rand[4] == "—" and rand[7] == "—"  # incomplete rows rank last, no mean
    assert "Matching Training Trajectories (CVPR 2022), Table 3" in render(store)
