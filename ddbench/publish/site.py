"""The leaderboard as a static site: an index and one self-contained page per dataset.

Each page holds the dataset's cards as sortable tables (the same rows and ranking as LEADERBOARD.md,
plus cost columns), an accuracy-against-IPC plot, a method × arch heat-map for cross-architecture
cards and an image grid of each ranked set that can be found on disk (pixel space, ZCA undone).
Plots are drawn with matplotlib and embedded as PNG data URIs, so a page is one file. Every text
cell is HTML-escaped (pandas' `to_html(escape=True)`, `html.escape` elsewhere).
"""
from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ddbench.cards.card import ProtocolCard
from ddbench.core.errors import DDBenchError
from ddbench.core.paths import atomic_write
from ddbench.kinds import load_protocol
from ddbench.publish import stats
from ddbench.publish.costs import pareto_front, set_costs, storage_cell
from ddbench.publish.leaderboard import (
    Citations,
    arch_matrix,
    card_recipes,
    current_rows,
    per_seed,
    published_lookup,
    rank_card,
    ranked_table,
    robustness_columns,
    summarize,
)
from ddbench.store.distilled import DistilledSet
from ddbench.store.results import ResultStore

log = logging.getLogger("ddbench")

MAX_GRID_IMAGES = 100  # per set: up to 10 classes × 10 images
_SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(table => table.querySelectorAll('thead th').forEach((th, col) =>
  th.addEventListener('click', () => {
    const body = table.tBodies[0];
    const key = r => { const t = r.cells[col].innerText.trim(); const v = parseFloat(t); return isNaN(v) ? t : v; };
    const dir = th.dataset.dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
    [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
      const c = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
      return dir === 'asc' ? c : -c; }).forEach(r => body.appendChild(r));
  })));
"""
_STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f0f0f0;cursor:pointer}img{max-width:100%}figure{display:inline-block;margin:0 1em 1em 0}
.note{color:#555;font-size:13px}.scroll{overflow-x:auto}table.paper td{vertical-align:top}"""


def _png(fig: Any) -> str:
    """A matplotlib figure as an <img> data URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DDBenchError("the HTML site draws its plots with matplotlib: pip install 'ddbench[site]'") from None
    return plt


def ipc_plot(dataset: str, summary: pd.DataFrame) -> str:
    """Accuracy against IPC for each method on the dataset's standard cards (first arch, log-scaled IPC)."""
    plt = _pyplot()
    points: dict[str, list[tuple[int, float, float]]] = {}
    for protocol in summary["protocol"].unique():
        card = load_protocol(protocol)
        if card.dataset != dataset or len(card.archs) > 1 or card.kind != "supervised":
            continue
        part = summary[(summary["protocol"] == protocol) & (summary["arch"] == card.archs[0])]
        for r in part.itertuples():
            points.setdefault(r.method, []).append((card.ipc, r.mean, r.std))
    if not points:
        return ""
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, pts in sorted(points.items()):
        pts.sort()
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("images per class")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset}: accuracy against IPC")
    ax.legend(fontsize=8)
    return _png(fig)


def heatmap(card: ProtocolCard, part: pd.DataFrame) -> str:
    """Method × arch mean accuracy as a heat-map with the values written in."""
    plt = _pyplot()
    table = part.pivot_table(index="method", columns="arch", values="mean", aggfunc="max").reindex(columns=list(card.archs))
    fig, ax = plt.subplots(figsize=(1.6 * len(card.archs) + 2, 0.6 * len(table) + 1.5))
    image = ax.imshow(table.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(table.columns)), [str(c) for c in table.columns], rotation=30, ha="right")
    ax.set_yticks(range(len(table.index)), [str(i) for i in table.index])
    for (i, j), value in pd.DataFrame(table.to_numpy(dtype=float)).stack().items():
        ax.text(j, i, f"{value:.1f}", ha="center", va="center", color="white", fontsize=9)
    fig.colorbar(image, ax=ax, label="accuracy (%)")
    ax.set_title(f"{card.id}: method × arch")
    return _png(fig)


def image_grid(dset: DistilledSet) -> str:
    """Up to 10 images of up to 10 classes, in pixel space (ZCA undone), titled with the set id."""
    plt = _pyplot()
    from torchvision.utils import make_grid

    labels = dset.labels if dset.labels.ndim == 1 else dset.labels.argmax(1) if dset.labels.numel() else None
    if labels is None:
        picked = list(range(min(MAX_GRID_IMAGES, len(dset.images))))
    else:
        picked = [i for c in range(min(10, dset.num_classes)) for i in (labels == c).nonzero().flatten().tolist()[:10]]
    pixels = dset.space.to_pixels(dset.images[picked].float())
    rows = min(10, dset.ipc) if dset.ipc else 10
    grid = make_grid(pixels, nrow=max(1, rows), padding=1, pad_value=1.0).permute(1, 2, 0).numpy()
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(grid.squeeze() if grid.shape[2] == 1 else grid, cmap="gray" if grid.shape[2] == 1 else None)
    ax.axis("off")
    ax.set_title(f"set {dset.set_id}", fontsize=9)
    return _png(fig)


def find_sets(dirs: Iterable[Path], wanted: set[str]) -> dict[str, Path]:
    """set id -> file, for the wanted ids among the .safetensors files under `dirs` (unreadable files skipped)."""
    found: dict[str, Path] = {}
    for root in dirs:
        for path in sorted(Path(root).rglob("*.safetensors")) if Path(root).is_dir() else []:
            if len(found) == len(wanted):
                return found
            try:
                set_id = DistilledSet.load(path).set_id
            except DDBenchError:
                continue
            if set_id in wanted:
                found.setdefault(set_id, path)
    return found


def _table_html(headers: list[str], rows: list[list[Any]]) -> str:
    return pd.DataFrame(rows, columns=headers).to_html(index=False, escape=True, classes="sortable", border=0)


PAPER_IPCS = (1, 10, 50)


def paper_table(dataset: str, summary: pd.DataFrame, seeds: dict, pub: dict, cites: Citations, same_recipe: set[str]) -> str:
    """Method × IPC on the dataset's standard cards (`<dataset>-ipc1|10|50`), as papers print it: each cell the mean ±
    std with its rank group, the published value and its verdict under it."""
    cards = {ipc: f"{dataset}-ipc{ipc}" for ipc in PAPER_IPCS}
    cells: dict[str, dict[int, str]] = {}
    best: dict[str, float] = {}
    for ipc, protocol in cards.items():
        part = summary[(summary["protocol"] == protocol) & (summary["task"] == "")]
        if part.empty:
            continue
        card = load_protocol(protocol)
        part = part[(part["arch"] == card.archs[0]) & (part["precision"] == card.precision)]
        ranking = rank_card(card, part, seeds).get("")
        for r in part.itertuples():
            group = ranking.group.get((r.method, r.run_id, r.arch)) if ranking else None
            n = len(seeds.get((r.protocol, r.method, r.run_id, r.arch, r.task, r.precision), {}))
            tag = f"group {group}" if group is not None else f"partial, n={n}"
            text = f"{html.escape(f'{r.mean:.2f} ± {r.std:.2f}')} <small>({tag})</small>"
            p = pub.get((protocol, r.method, "", "")) if not r.method.endswith(" (external)") else None
            if p is not None:
                est = stats.estimate(list(seeds.get((r.protocol, r.method, r.run_id, r.arch, r.task, r.precision), {}).values())
                                     or [r.mean])
                text += (f"<br><small>published {p.accuracy:.1f} [{cites.mark(p)}]: "
                         f"{html.escape(stats.verdict(est, p.accuracy, p.recipe in same_recipe))}</small>")
            cells.setdefault(r.method, {})[ipc] = text
            best[r.method] = max(best.get(r.method, -1.0), r.mean)
    if not cells:
        return ""
    head = "".join(f"<th>IPC {ipc}</th>" for ipc in PAPER_IPCS)
    body = "".join(f"<tr><td>{html.escape(m)}</td>" + "".join(f"<td>{cells[m].get(ipc, '—')}</td>" for ipc in PAPER_IPCS) + "</tr>"
                   for m in sorted(cells, key=lambda m: -best[m]))
    return (f"<h2 id=\"{html.escape(dataset)}-summary\">{html.escape(dataset)}: method × images per class</h2>"
            "<p class=\"note\">Each cell: mean ± std over the card's seeds and the method's rank group on that card (methods "
            "in one group are tied within noise); under it, the published number and whether we reproduced it.</p>"
            f"<div class=\"scroll\"><table class=\"paper\"><thead><tr><th>method</th>{head}</tr></thead><tbody>{body}"
            "</tbody></table></div>")


def cost_plots(card: ProtocolCard, part: pd.DataFrame, costs: pd.DataFrame) -> str:
    """Accuracy against what a set costs to make (device-seconds) and to store (bytes), per method of one card, with
    each Pareto front drawn (filled markers: on the front)."""
    merged = part.merge(costs, on=["protocol", "method", "run_id"], how="inner")
    panels = [("cost_s", "device-seconds to make the set (log)"), ("total_bytes", "bytes stored (log)")]
    usable = [(col, label) for col, label in panels if merged[col].notna().any() and (merged[col] > 0).any()]
    if merged.empty or not usable:
        return ""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(usable), figsize=(5.5 * len(usable), 3.8), squeeze=False)
    for ax, (col, label) in zip(axes[0], usable):
        pts = [(f"{r.method} {r.run_id}", float(getattr(r, col)), float(r.mean), r.method)
               for r in merged.itertuples() if getattr(r, col) == getattr(r, col) and getattr(r, col) > 0]
        front = pareto_front([(n, c, a) for n, c, a, _ in pts])
        for name, c, a, method in pts:
            ax.scatter([c], [a], s=40, marker="o", facecolors="C0" if name in front else "none", edgecolors="C0")
            ax.annotate(method, (c, a), textcoords="offset points", xytext=(4, 4), fontsize=8)
        line = sorted((c, a) for n, c, a, _ in pts if n in front)
        if len(line) > 1:
            ax.step([c for c, _ in line], [a for _, a in line], where="post", color="C1", lw=1, label="Pareto front")
            ax.legend(fontsize=8)
        if col == "total_bytes" and merged["real_bytes"].notna().any():
            ax.axvline(float(merged["real_bytes"].dropna().iloc[0]), color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
    fig.suptitle(f"{card.id}: accuracy against cost and storage (dotted: the bytes of the real images at this IPC)", fontsize=9)
    return _png(fig)


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}<script>{_SORT_SCRIPT}</script></body></html>")


def build_site(store: ResultStore, out: str | Path, set_dirs: Iterable[str | Path] = ()) -> list[Path]:
    """Write index.html and one page per dataset under `out`; returns the written files."""
    _pyplot()
    out = Path(out)
    rows, dropped = current_rows(store)
    summary = summarize(rows)
    robust = robustness_columns(rows)
    pub, recipes = published_lookup()
    seeds, same = per_seed(rows), card_recipes()
    costs = set_costs(rows)
    set_ids = {r["set_id"] for r in rows if r.get("set_id")}
    sets = find_sets([Path(d) for d in set_dirs], set_ids) if set_ids else {}
    by_row: dict[tuple, list[str]] = {}  # (card, method, run) -> its set ids, lowest seed first
    for r in sorted(rows, key=lambda r: r.get("seed", 0)):
        by_row.setdefault((r["protocol"], r["method"], r["run_id"]), []).append(r.get("set_id") or "")
    datasets = sorted({load_protocol(p).dataset for p in summary["protocol"].unique()}) if not summary.empty else []
    written = []
    for dataset in datasets:
        cites = Citations(recipes)
        body = [f"<p><a href=\"index.html\">ddbench leaderboard</a></p><h1>{html.escape(dataset)}</h1>",
                paper_table(dataset, summary, seeds, pub, cites, same)]
        plots = ["<h2>Plots</h2>", ipc_plot(dataset, summary)]
        for protocol in sorted(p for p in summary["protocol"].unique() if load_protocol(p).dataset == dataset):
            card = load_protocol(protocol)
            part = summary[summary["protocol"] == protocol]
            matrix = len(card.archs) > 1
            headers, table = (arch_matrix(card, part, pub, cites, esc=str) if matrix else
                              ranked_table(card, part, pub, cites, esc=str, scores={k: v for k, v in robust.items() if k[0] == protocol},
                                           seeds=seeds, same_recipe=same))
            if not matrix:
                cost = costs[costs["protocol"] == protocol].set_index(["method", "run_id"])
                headers = [*headers, "make cost (device-s)", "distill peak memory (MB)", "storage"]
                table = [[*row, *_cost_cells(cost, row[headers.index("method")], row[headers.index("run")])] for row in table]
            body += [f"<h2 id=\"{html.escape(protocol)}\">{html.escape(protocol)}</h2>",
                     f"<p class=\"note\">{html.escape(card.description)} · card v{card.version} <code>{card.hash}</code></p>",
                     _table_html(headers, table)]
            plots.append(heatmap(card, part) if matrix else cost_plots(card, part, costs))
            grids = []
            for method, run_id in part[["method", "run_id"]].drop_duplicates().itertuples(index=False):
                path = next((sets[i] for i in by_row.get((protocol, method, run_id), []) if i in sets), None)
                if path is not None:
                    grids.append(f"<figure>{image_grid(DistilledSet.load(path))}<figcaption>{html.escape(method)}</figcaption></figure>")
            plots += grids
        body += plots
        if cites.numbers:
            body += ["<h2>Sources of published numbers</h2><ol>", *[f"<li>{html.escape(t)}</li>" for t in cites.texts()], "</ol>"]
        page = out / f"{dataset}.html"
        _write(page, _page(f"ddbench — {dataset}", "\n".join(body)))
        written.append(page)
    links = "".join(f"<li><a href=\"{html.escape(d)}.html\">{html.escape(d)}</a></li>" for d in datasets) or "<li>No results yet.</li>"
    overview = _table_html(["dataset", "card", "methods", "leader", "accuracy"], _leaders(summary)) if not summary.empty else ""
    note = (f"<p class=\"note\">{dropped} row(s) from quick cards, older card versions, shortened recipes, snapshots or "
            "partial data are not shown.</p>")
    index = _page("ddbench leaderboard", "<h1>ddbench leaderboard</h1><p>Final-epoch test accuracy (%), mean ± std over "
                  f"evaluation seeds, from <code>{html.escape(store.path.name)}</code>. Click a column to sort.</p>"
                  f"<ul>{links}</ul>{overview}{note if dropped else ''}")
    _write(out / "index.html", index)
    return [out / "index.html", *written]


def _cost_cells(cost: pd.DataFrame, method: str, run_id: str) -> list[str]:
    key = (method, run_id)
    if key not in cost.index:
        return ["—", "—", "—"]
    c = cost.loc[key]
    kind = {"cuda_max_allocated": " (CUDA peak)", "process_max_rss": " (process RSS)"}.get(c["peak_kind"], "")
    return [f"{c['cost_s']:.1f}" if pd.notna(c["cost_s"]) else "—",
            f"{c['distill_peak_mb']:.0f}{kind}" if pd.notna(c["distill_peak_mb"]) else "—",
            storage_cell(float(c["total_bytes"]), float(c["real_bytes"]), bool(c["labels_outweigh_images"]))]


def _leaders(summary: pd.DataFrame) -> list[list[Any]]:
    """Per card: how many methods have rows and the best mean (on a cross-arch card, on its first arch)."""
    rows = []
    for protocol in sorted(summary["protocol"].unique()):
        card = load_protocol(protocol)
        part = summary[(summary["protocol"] == protocol) & (summary["arch"] == card.archs[0]) & (summary["task"] == "")]
        best = part.sort_values("mean", ascending=False).head(1)
        leader = [best["method"].iloc[0], f"{best['mean'].iloc[0]:.2f}"] if len(best) else ["—", "—"]
        rows.append([card.dataset, protocol, summary[summary["protocol"] == protocol]["method"].nunique(), *leader])
    return rows


def _write(path: Path, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)
