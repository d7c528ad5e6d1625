"""The leaderboard as a static site: an index and one self-contained page per dataset.

Each page holds the dataset's cards as sortable tables (the same rows and ranking as LEADERBOARD.md,
plus cost columns), an accuracy-against-IPC plot, a method × arch heat-map for cross-architecture
cards and an image grid of each ranked set (pixel space, ZCA undone; `grids.py`: drawn from the set's file
where found, else kept from the published site). Plots are drawn with matplotlib and embedded as PNG data
URIs; the grids are PNG files under `grids/`, one per set, so a rebuild without the sets keeps them. Every text
cell is HTML-escaped (pandas' `to_html(escape=True)`, `html.escape` elsewhere).
"""
from __future__ import annotations

import base64
import html
import logging
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ddbench.cards.card import ProtocolCard
from ddbench.core.errors import DDBenchError
from ddbench.core.paths import atomic_write
from ddbench.distill.registry import METHODS
from ddbench.kinds import load_protocol
from ddbench.publish import stats
from ddbench.publish.costs import pareto_front, set_costs, storage_cell
from ddbench.publish.grids import SiteGrids, png_bytes
from ddbench.publish.leaderboard import (
    Citations,
    arch_matrix,
    card_recipes,
    current_rows,
    mean_std,
    per_seed,
    published_for,
    published_lookup,
    rank_card,
    ranked_mean,
    ranked_table,
    robustness_columns,
    seeds_of,
    shown_method,
    summarize,
)
from ddbench.publish.tracks import SUMMARY_HEADERS, track_rows, track_summary
from ddbench.store.results import ResultStore

log = logging.getLogger("ddbench")

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
_STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;
overflow-wrap:anywhere}table{border-collapse:collapse;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;
text-align:left;white-space:nowrap;overflow-wrap:normal}th{background:#f0f0f0;cursor:pointer}img{max-width:100%;height:auto}
figure{display:inline-block;margin:0 1em 1em 0;max-width:100%}.note{color:#555;font-size:13px}
.scroll{overflow-x:auto;max-width:100%;margin:1em 0}table.paper td{vertical-align:top}h2 a.anchor{color:#999;
text-decoration:none;margin-left:.3em;font-size:.8em}@media (max-width:600px){body{margin:1em auto}th,td{font-size:12px}}"""


def _png(fig: Any, alt: str) -> str:
    """A matplotlib figure as an <img> data URI with its alt text (the figure is closed)."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png_bytes(fig)).decode()}">'


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DDBenchError("the HTML site draws its plots with matplotlib: pip install 'ddbench[site]'") from None
    return plt


def ipc_plot(dataset: str, summary: pd.DataFrame, pub: dict) -> str:
    """Accuracy against IPC for each method on the dataset's standard cards (first arch, log-scaled IPC, a tick at
    every IPC), with the published numbers of the same method and card as hollow markers."""
    plt = _pyplot()
    points: dict[str, list[tuple[int, float, float]]] = {}
    published: dict[str, list[tuple[int, float]]] = {}
    for protocol in summary["protocol"].unique():
        card = load_protocol(protocol)
        if card.dataset != dataset or len(card.archs) > 1 or card.kind != "supervised" or card.labels != "hard":
            continue
        part = summary[(summary["protocol"] == protocol) & (summary["arch"] == card.archs[0])
                       & (summary["precision"] == card.precision)]
        for r in part.itertuples():
            points.setdefault(r.method, []).append((card.ipc, r.mean, r.std))
            p = pub.get((protocol, r.method, "", ""))
            if p is not None:
                published.setdefault(r.method, []).append((card.ipc, p.accuracy))
    if not points:
        return ""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (method, pts) in enumerate(sorted(points.items())):
        pts.sort()
        colour = f"C{i % 10}"
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3, label=method,
                    color=colour)
        if method in published:
            xs, ys = zip(*sorted(published[method]))
            ax.scatter(xs, ys, marker="D", facecolors="none", edgecolors=colour, s=45,
                       label=f"{method} (published)")
    ipcs = sorted({p[0] for pts in points.values() for p in pts})
    ax.set_xscale("log")
    ax.set_xticks(ipcs, [str(i) for i in ipcs])
    ax.minorticks_off()
    ax.set_xlabel("images per class")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset}: accuracy against IPC (hollow: published)")
    ax.legend(fontsize=8)
    methods = ", ".join(sorted(points))
    return _png(fig, f"{dataset}: test accuracy against images per class ({', '.join(map(str, ipcs))}) for {methods}; "
                     "hollow diamonds are published numbers")


def heatmap(card: ProtocolCard, part: pd.DataFrame, order: list[str]) -> str:
    """Method × arch mean accuracy as a heat-map: rows in rank order, the value written in each cell in a colour that
    reads on it, "—" where a method has no rows for an arch."""
    plt = _pyplot()
    table = part.pivot_table(index="method", columns="arch", values="mean", aggfunc="max").reindex(columns=list(card.archs))
    table = table.reindex([m for m in order if m in table.index] + [m for m in table.index if m not in order])
    values = table.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.7 * len(card.archs) + 3, 0.6 * len(table) + 2))
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(table.columns)), [str(c) for c in table.columns], rotation=30, ha="right")
    ax.set_yticks(range(len(table.index)), [str(i) for i in table.index])
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            value = values[i, j]
            if value != value:
                ax.text(j, i, "—", ha="center", va="center", color="black", fontsize=10)
                continue
            r, g, b, _ = image.cmap(image.norm(value))
            ink = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"  # readable on light and dark cells
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", color=ink, fontsize=9)
    fig.colorbar(image, ax=ax, label="accuracy (%)")
    ax.set_title(f"{card.id}: method × arch (rows in rank order)")
    fig.tight_layout()
    return _png(fig, f"{card.id}: heat-map of mean accuracy per method (rows, in rank order) and architecture (columns)")


def _table_html(headers: list[str], rows: list[list[Any]]) -> str:
    """A sortable table in its own horizontally scrolling container; every cell escaped, a (text, href) cell a link."""
    def td(value: Any) -> str:
        if isinstance(value, tuple):
            text, href = value
            return f'<td><a href="{html.escape(str(href))}">{html.escape(str(text))}</a></td>'
        return f"<td>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(td(v) for v in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'



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
            values = list(seeds_of(r, seeds).values())
            tag = f"group {group}" if group is not None else f"partial, n={len(values)}"
            text = f"{html.escape(mean_std(r.mean, r.std, int(r.n)))} <small>({tag})</small>"
            p = published_for(pub, card, r.method, "", r.arch)
            if p is not None:
                est = stats.estimate(values or [r.mean])
                text += (f"<br><small>published {p.accuracy:.1f} [{cites.mark(p)}]: "
                         f"{html.escape(stats.verdict(est, p.accuracy, p.recipe in same_recipe))}</small>")
            cells.setdefault(r.method, {})[ipc] = text
            best[r.method] = max(best.get(r.method, -1.0), r.mean)
    if not cells:
        return ""
    head = "".join(f"<th>IPC {ipc}</th>" for ipc in PAPER_IPCS)
    body = "".join(f"<tr><td>{html.escape(m)}</td>" + "".join(f"<td>{cells[m].get(ipc, '—')}</td>" for ipc in PAPER_IPCS) + "</tr>"
                   for m in sorted(cells, key=lambda m: -best[m]))
    return (_heading(f"{dataset}-summary", f"{dataset}: method × images per class") +
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
    return _png(fig, f"{card.id}: test accuracy against the device-seconds to make each set and the bytes it stores, "
                     "Pareto front marked")


def track_plot(dataset: str, ipc: int, table: list[list[str]]) -> str:
    """Clean accuracy against PGD accuracy and against the population membership AUC, one point per method."""
    def number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    clean = SUMMARY_HEADERS.index("clean %")
    panels = [(SUMMARY_HEADERS.index("PGD %"), "PGD accuracy (%)"),
              (SUMMARY_HEADERS.index("MIA AUC (population)"), "membership AUC, population (0.5: chance)")]
    usable = [(i, label) for i, label in panels if any(number(r[clean]) is not None and number(r[i]) is not None for r in table)]
    if not usable:
        return ""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(usable), figsize=(5.5 * len(usable), 3.8), squeeze=False)
    for ax, (i, label) in zip(axes[0], usable):
        for row in table:
            x, y = number(row[i]), number(row[clean])
            if x is not None and y is not None:
                ax.scatter([x], [y], s=40, color="C0")
                ax.annotate(row[0], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("clean accuracy (%)")
    fig.suptitle(f"{dataset} at IPC {ipc}: accuracy against robustness and privacy", fontsize=9)
    return _png(fig, f"{dataset} at IPC {ipc}: clean accuracy of each method against its PGD accuracy and its membership "
                     "attack AUC")


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>{body}<script>{_SORT_SCRIPT}</script>"
            "</body></html>")


def _heading(anchor: str, text: str) -> str:
    """An <h2> with its own anchor and a link to it."""
    a = html.escape(anchor)
    return f'<h2 id="{a}">{html.escape(text)}<a class="anchor" href="#{a}" aria-label="link to {a}">¶</a></h2>'


def methods_section(rows: list[dict[str, Any]]) -> str:
    """Each method shown: a link to its paper and to its code (where registered), and when its rows were added."""
    dates: dict[str, list[str]] = {}
    for r in rows:
        if not r.get("external"):
            dates.setdefault(r["method"], []).append(str(r.get("timestamp", ""))[:10])
    items = []
    for name in sorted(dates):
        cls = METHODS.get(name) if name in METHODS else None
        links = [f'<a href="{html.escape(url)}">{label}</a>' for label, url in
                 (("paper", getattr(cls, "paper", "")), ("code", getattr(cls, "code", ""))) if url]
        days = sorted(d for d in dates[name] if d)
        when = f"rows added {days[0]}" + (f" to {days[-1]}" if days and days[-1] != days[0] else "") if days else ""
        items.append(f"<li><b>{html.escape(name)}</b>: {' · '.join(links) or 'a baseline'}{' · ' + when if when else ''}</li>")
    return f"{_heading('methods', 'Methods')}<ul>{''.join(items)}</ul>" if items else ""


def build_site(store: ResultStore, out: str | Path, set_dirs: Iterable[str | Path] = ()) -> list[Path]:
    """Write index.html and one page per dataset under `out`; returns the written files."""
    _pyplot()
    out = Path(out)
    stored, dropped = current_rows(store)
    rows = track_rows(stored)  # adversarial and privacy rows: one ranked task per measurement
    summary = summarize(rows)
    robust = robustness_columns(rows)
    pub, recipes = published_lookup()
    seeds, same = per_seed(rows), card_recipes()
    costs = set_costs(rows)
    set_ids = {r["set_id"] for r in rows if r.get("set_id")}
    grids = SiteGrids(out, [Path(d) for d in set_dirs], set_ids)
    by_row: dict[tuple, list[str]] = {}  # (card, method, run) -> its set ids, lowest seed first
    for r in sorted(rows, key=lambda r: r.get("seed", 0)):
        by_row.setdefault((r["protocol"], r["method"], r["run_id"]), []).append(r.get("set_id") or "")
    datasets = sorted({load_protocol(p).dataset for p in summary["protocol"].unique()}) if not summary.empty else []
    written, missing = [], set()
    for dataset in datasets:
        cites = Citations(recipes)
        body = [f"<p><a href=\"index.html\">ddbench leaderboard</a></p><h1>{html.escape(dataset)}</h1>",
                paper_table(dataset, summary, seeds, pub, cites, same)]
        plots = [_heading(f"{dataset}-plots", "Plots"), ipc_plot(dataset, summary, pub)]
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
            body += [_heading(protocol, protocol),
                     f"<p class=\"note\">{html.escape(card.description)} · card v{card.version} <code>{card.hash}</code></p>",
                     _table_html(headers, table)]
            order = [row[1] for row in table if not str(row[1]).endswith("(published)")]
            plots.append(heatmap(card, part, order) if matrix else cost_plots(card, part, costs))
            for method, run_id in part[["method", "run_id"]].drop_duplicates().itertuples(index=False):
                figure = grids.figure(by_row.get((protocol, method, run_id), []), method, dataset, card.ipc)
                if figure is not None:
                    plots.append(figure)
                elif not method.endswith(" (external)"):
                    missing.add((protocol, method))
        tracks = {k: v for k, v in track_summary(stored, shown_method).items() if k[0] == dataset}
        for (_, ipc), table in sorted(tracks.items()):
            body += [_heading(f"{dataset}-ipc{ipc}-tracks", f"Beyond accuracy at IPC {ipc}"),
                     "<p class=\"note\">Means over seeds of the adversarial and privacy cards: accuracy on clean and attacked "
                     "test images, and the membership AUC of the stronger attack, loss or calibrated (0.5: chance).</p>",
                     _table_html(SUMMARY_HEADERS, table), track_plot(dataset, ipc, table)]
        body += [*plots, methods_section([r for r in rows if load_protocol(r["protocol"]).dataset == dataset])]
        if cites.numbers:
            body += ["<h2>Sources of published numbers</h2><ol>", *[f"<li>{html.escape(t)}</li>" for t in cites.texts()], "</ol>"]
        page = out / f"{dataset}.html"
        _write(page, _page(f"ddbench — {dataset}", "\n".join(body)))
        written.append(page)
    links = "".join(f"<li><a href=\"{html.escape(d)}.html\">{html.escape(d)}</a></li>" for d in datasets) or "<li>No results yet.</li>"
    if missing:  # said loudly: a rebuild elsewhere would otherwise silently lose the committed pages' image grids
        log.warning("the site shows no image grid for %d ranked set(s) (e.g. %s on %s): their files were not found under "
                    "%s; pass --sets DIR with the sets to keep them", len(missing), *sorted(missing)[0][::-1],
                    ", ".join(map(str, set_dirs)) or "no --sets folder")
    overview = (_table_html(["dataset", "card", "methods", "leader", "ranked by"], leaders(summary)) if not summary.empty else "")
    note = (f"<p class=\"note\">{dropped} row(s) from quick cards, older card versions, shortened recipes, snapshots or "
            "partial data are not shown.</p>")
    latest = max((str(r.get("timestamp", ""))[:10] for r in rows), default="")
    index = _page("ddbench leaderboard", "<h1>ddbench leaderboard</h1><p>Final-epoch test accuracy (%), mean ± std over "
                  f"evaluation seeds, from <code>{html.escape(store.path.name)}</code>"
                  f"{f' (newest row {html.escape(latest)})' if latest else ''}. Click a column to sort. A leader is the "
                  "best full run (the card's seed count; every arch on a cross-arch card), shown with the number it is "
                  "ranked by.</p>"
                  f"<ul>{links}</ul>{overview}{note if dropped else ''}{methods_section(rows)}")
    _write(out / "index.html", index)
    grids.finish()
    return [out / "index.html", *written]


def _seconds_cell(seconds: float, unrecorded: int) -> str:
    """Mean make seconds, as a lower bound where artefacts recorded no time."""
    if pd.isna(seconds):
        return "—"
    return f"≥ {seconds:.1f} ({unrecorded} artefact(s) unrecorded)" if unrecorded else f"{seconds:.1f}"


def _cost_cells(cost: pd.DataFrame, method: str, run_id: str) -> list[str]:
    key = (method, run_id)
    if key not in cost.index:
        return ["—", "—", "—"]
    c = cost.loc[key]
    kind = {"cuda_max_allocated": " (CUDA peak)", "process_max_rss": " (process RSS)"}.get(c["peak_kind"], "")
    if c["cost_by_device"]:  # made on several devices: each device's mean, never one mean over CPU and GPU seconds
        cost_cell = "; ".join(f"{device}: {_seconds_cell(seconds, unrecorded)}" for device, seconds, unrecorded in c["cost_by_device"])
    else:
        cost_cell = _seconds_cell(c["cost_s"], c["unrecorded"])
    return [cost_cell,
            f"{c['distill_peak_mb']:.0f}{kind}" if pd.notna(c["distill_peak_mb"]) else "—",
            storage_cell(float(c["total_bytes"]), float(c["real_bytes"]), bool(c["labels_outweigh_images"]))]


def leaders(summary: pd.DataFrame) -> list[list[Any]]:
    """Per card: how many methods have rows, the leader and the number it is ranked by: the mean over the card's seeds
    (single-arch cards) or over its archs (cross-arch cards). Only full runs (the card's seed count, every arch) lead."""
    rows = []
    for protocol in sorted(summary["protocol"].unique()):
        card = load_protocol(protocol)
        part = summary[(summary["protocol"] == protocol) & (summary["task"] == "") & (summary["precision"] == card.precision)]
        scored = []
        for (method, run_id), group in part.groupby(["method", "run_id"], sort=False):
            ranked_by = ranked_mean(card, {r.arch: r for r in group.itertuples()})
            if ranked_by is not None:
                scored.append((ranked_by, method))
        what = "mean over archs" if len(card.archs) > 1 else "mean"
        best = max(scored) if scored else None
        leader = [best[1], f"{best[0]:.2f} ({what})"] if best else ["— (no full run yet)", "—"]
        link = f"{card.dataset}.html#{protocol}"
        rows.append([card.dataset, (protocol, link), part["method"].nunique(), *leader])
    return rows


def _write(path: Path, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)
