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


def _table(text: str, card_id: str) -> list[list[str]]:
    """The lines of one card's markdown table (header first), as stripped cells."""
    section = text.split(f"## {card_id}")[1].split("\n## ")[0]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines() if line.startswith("| ")]


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


def test_an_entry_made_on_several_devices_names_each_with_its_row_count(tmp_path):
    store = ResultStore(tmp_path)
    store.append([_row("random", s, 90.0 + s, device="cpu (x86_64, 1 threads)" if s < 3 else "cpu (x86_64, 2 threads)")
                  for s in range(5)] + [_row("herding", s, 80.0, device="cuda (H100)") for s in range(5)])
    cells = {line[1]: line for line in _table(render(store), "mnist-ipc10")[1:]}
    assert "cpu (x86_64, 1 threads) ×3; cpu (x86_64, 2 threads) ×2" in cells["random"]
    assert "cuda (H100)" in cells["herding"] and not any("×" in c for c in cells["herding"])


def test_published_numbers_cover_the_issue_list():
    pub = {(p.protocol, p.method): p.accuracy for p in load_published()[0]}
    assert pub[("cifar10-ipc10", "random")] == 26.0 and pub[("mnist-ipc1", "forgetting")] == 35.5
    assert all(load_protocol(protocol) for protocol, _ in pub)


def test_ranking_orders_rows_inserted_in_reverse(tmp_path):
    store = ResultStore(tmp_path)
    store.append([_row(m, s, acc + s) for m, acc in (("c-worst", 50.0), ("b-middle", 70.0), ("a-best", 90.0))
                  for s in range(5)])  # worst first; the card's 5 seeds each
    ranked = [(line[0], line[1]) for line in _table(render(store), "mnist-ipc10")[1:]]
    assert ranked == [("1", "a-best"), ("2", "b-middle"), ("3", "c-worst")]


def test_the_header_names_the_store_it_was_rendered_from(tmp_path):
    store = ResultStore(tmp_path / "elsewhere")
    store.append([_row("random", 0, 94.0)])
    text = render(store)
    assert str(store.path) in text and "`leaderboard/results.jsonl`" not in text


def test_cross_arch_cards_publish_a_method_by_arch_matrix(tmp_path):
    card = load_protocol("cifar10-ipc10-xarch")
    accs = {"convnet": 60.0, "resnet18_dc": 40.0, "vgg11_dc": 45.0, "alexnet_dc": 30.0, "vit_tiny_patch16_224": 25.0}
    store = ResultStore(tmp_path)
    store.append([_row("mtt", s, acc + s, protocol=card.id, arch=arch) for arch, acc in accs.items() for s in range(5)])
    store.append([_row("random", s, 20.0 + s, protocol=card.id, arch=arch) for arch in ("convnet", "alexnet_dc") for s in range(5)])
    lines = _table(render(store), card.id)
    header, body = lines[0], lines[1:]
    assert header == ["#", "method", *card.archs, "mean over archs", "n (min)", "run"]
    mtt, published, rand = body
    assert mtt[:2] == ["1", "mtt"] and mtt[2] == "62.00 ± 1.41" and mtt[3] == "42.00 ± 1.41 (-20.0)"
    assert mtt[7] == f"{sum(accs.values()) / 5 + 2:.2f}"  # the mean over the five archs
    assert published[1] == "mtt (published)" and published[2].startswith("64.3 [") and published[5].startswith("34.2 [")
    assert published[6] == "—"  # the paper has no ViT column
    assert rand[:2] == ["incomplete", "random"] and rand[4] == "—" and rand[7] == "—"  # incomplete rows are not ranked
    assert "Matching Training Trajectories (CVPR 2022), Table 3" in render(store)


def test_a_one_seed_run_is_shown_partial_never_ranked_or_leader(tmp_path):
    from ddbench.publish.leaderboard import current_rows, summarize
    from ddbench.publish.site import leaders

    store = ResultStore(tmp_path)
    store.append([_row("random", s, 90.0 + s) for s in range(5)] + [_row("lucky", 0, 99.0)])  # the card says 5 seeds
    rows = {line[1]: line for line in _table(render(store), "mnist-ipc10")[1:]}
    assert rows["random"][0] == "1" and rows["lucky"][0] == "—"  # only the full run is ranked
    assert rows["lucky"][3] == "99.00 ± —" and rows["lucky"][5] == "partial, n=1"  # no std over one seed
    (leader,) = [r for r in leaders(summarize(current_rows(store)[0])) if r[1][0] == "mnist-ipc10"]
    assert leader[3:] == ["random", "92.00 (mean)"]  # the number it is ranked by; never the one-seed run


def test_cross_arch_missing_cells_never_rank_below_a_method_they_beat(tmp_path):
    from ddbench.publish.leaderboard import current_rows, summarize
    from ddbench.publish.site import leaders

    card = load_protocol("cifar10-ipc10-xarch")
    store = ResultStore(tmp_path)
    store.append([_row("random", s, 20.0 + s, protocol=card.id, arch=a) for a in card.archs for s in range(5)])
    store.append([_row("herding", s, 30.0 + s, protocol=card.id, arch=a) for a in card.archs[:-1] for s in range(5)])  # no ViT
    ranks = {line[1]: line[0] for line in _table(render(store), card.id)[1:]}
    assert ranks["random"] == "1" and ranks["herding"] == "incomplete"  # not ranked (so never below random)
    (leader,) = [r for r in leaders(summarize(current_rows(store)[0])) if r[1][0] == card.id]
    assert leader[3:] == ["random", "22.00 (mean over archs)"]


def test_the_site_keeps_its_promises_without_the_sets_and_draws_every_ipc(tmp_path, caplog, monkeypatch):
    from ddbench.publish import site
    from ddbench.publish.leaderboard import published_lookup, summarize

    store = ResultStore(tmp_path / "lb")
    store.append([_row("random", s, 60.0 + 10 * i + s, protocol=f"mnist-ipc{ipc}", set_id="abc")
                  for i, ipc in enumerate((1, 10, 50)) for s in range(5)])
    site.build_site(store, tmp_path / "html", [tmp_path / "no-sets-here"])
    assert "the site shows no image grid for 3 ranked set(s)" in caplog.text  # said loudly, not silently dropped
    figures = []
    monkeypatch.setattr(site, "_png", lambda fig, alt: figures.append((fig, alt)) or "")
    site.ipc_plot("mnist", summarize(store.rows()), published_lookup()[0])
    (fig, alt), = figures
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == [1, 10, 50] and [t.get_text() for t in ax.get_xticklabels()] == ["1", "10", "50"]
    assert "random (published)" in [t.get_text() for t in ax.get_legend().get_texts()] and "published" in alt


def test_a_rebuild_without_the_sets_keeps_the_published_grids_and_removes_unranked_ones(tmp_path, caplog):
    """The committed site must survive a rebuild on a fresh clone: a grid drawn where the set's file was found is
    kept (same bytes, same link) where it is not; a grid no row ranks any more is removed; a hostile set id in a
    row names no file."""
    import logging

    import torch

    from ddbench.data import load_dataset
    from ddbench.distill.registry import create_method
    from ddbench.publish import site
    from ddbench.sweep.evaluate import EvalOptions, distill_cached

    caplog.set_level(logging.INFO, logger="ddbench")
    opts = EvalOptions(device=torch.device("cpu"), store=ResultStore(tmp_path / "scratch"), progress=False,
                       cache_dir=tmp_path / "sets")
    dset = distill_cached(create_method("random"), load_protocol("digits-quick"), load_dataset("digits"), 0, opts)
    store = ResultStore(tmp_path / "lb")
    store.append([_row("random", s, 90.0 + s, set_id=dset.set_id) for s in range(5)])
    store.append([_row("herding", s, 80.0 + s, set_id="../../escape") for s in range(5)])
    html_dir, grid = tmp_path / "html", tmp_path / "html" / "grids" / f"{dset.set_id}.png"
    (tmp_path / "escape.png").write_bytes(b"\x89PNG")  # what "grids/../../escape" would name
    site.build_site(store, html_dir, [tmp_path / "sets"])
    drawn = grid.read_bytes()
    assert drawn[:8] == b"\x89PNG\r\n\x1a\n" and f'src="grids/{dset.set_id}.png"' in (html_dir / "mnist.html").read_text()
    assert "1 set(s): 1 drawn from set files, 0 kept" in caplog.text
    caplog.clear()
    site.build_site(store, html_dir, [tmp_path / "no-sets-here"])  # a fresh clone: the sets are not on this machine
    assert grid.read_bytes() == drawn and f'src="grids/{dset.set_id}.png"' in (html_dir / "mnist.html").read_text()
    assert "1 set(s): 0 drawn from set files, 1 kept from the published site" in caplog.text
    assert "no image grid for 1 ranked set(s) (e.g. herding on mnist-ipc10)" in caplog.text  # only the one never drawn
    assert "escape.png" not in (html_dir / "mnist.html").read_text()
    earlier = ResultStore(tmp_path / "earlier")  # seed 0's grid was published; only seed 1's file is here
    earlier.append([_row("random", s, 90.0 + s, set_id="0a0a" if s == 0 else dset.set_id) for s in range(5)])
    (html_dir / "grids" / "0a0a.png").write_bytes(drawn)
    site.build_site(earlier, html_dir, [tmp_path / "sets"])
    assert 'src="grids/0a0a.png"' in (html_dir / "mnist.html").read_text()  # the lowest seed's: the page stays put
    other = ResultStore(tmp_path / "other")
    other.append([_row("random", s, 90.0 + s, set_id="f00d") for s in range(5)])
    site.build_site(other, html_dir, [tmp_path / "sets"])  # the set's rows are gone: its grid goes too
    assert not grid.exists() and list((html_dir / "grids").iterdir()) == []
