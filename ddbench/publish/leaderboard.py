"""Publish the result store as markdown: one table per protocol, methods ranked, published numbers beside.

Only rows made under the current version of a card (its hash), without overrides, of final sets, on a
complete copy of the dataset count; rows from edited cards, shortened recipes, distillation snapshots
or partial data are counted in a footnote and left out. Standard
deviations are population std (ddof = 0), the field's convention (numpy's default in DC/MTT).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import tomllib
from tabulate import tabulate

from ddbench.cards.card import ProtocolCard, list_protocols
from ddbench.core.errors import DDBenchError
from ddbench.core.paths import atomic_write
from ddbench.kinds import load_protocol
from ddbench.publish import stats
from ddbench.publish.tracks import SUMMARY_HEADERS, track_rows, track_summary
from ddbench.store.results import ResultStore
from ddbench.store.rows import record_type, scores_of


@dataclass(frozen=True)
class Published:
    protocol: str
    method: str
    accuracy: float
    citation: str
    recipe: str
    task: str = ""  # ssl-transfer: "<downstream>@<fraction>"
    arch: str = ""  # cross-architecture cards: the network the number is for ("" = the card's first)


def _published_toml() -> dict[str, Any]:
    return tomllib.loads((resources.files("ddbench.protocols") / "published.toml").read_text())


def load_published() -> tuple[list[Published], dict[str, str]]:
    data = _published_toml()
    recipes = data.get("recipes", {})
    entries = [Published(e["protocol"], e["method"], float(e["accuracy"]), e["citation"], e.get("recipe", ""), e.get("task", ""),
                         e.get("arch", "")) for e in data.get("published", [])]
    return entries, recipes


def cell(text: Any) -> str:
    """A markdown table cell: pipes, backslashes and HTML escaped, line breaks flattened (no injected rows)."""
    value = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(value.split())


def shown_method(row: dict[str, Any]) -> str:
    """The method a row is shown under: its own, or for a set evaluated from a file the name it claims, marked."""
    return f"{row['method']} (external)" if row.get("external") else row["method"]


def summarize(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Mean ± std and n per (protocol, method, run, arch, task, precision); task is "" except on ssl-transfer
    cards; rows of different precision are never averaged together. A set evaluated from a file shows the
    method it claims, marked external."""
    keys = ["protocol", "method", "run_id", "arch", "task", "precision"]
    rows = [r for r in rows if record_type(r) == "accuracy"]  # robustness records are columns, not accuracies
    if not rows:
        return pd.DataFrame(columns=[*keys, "mean", "std", "n", "device"])
    df = pd.DataFrame([{**r, "method": shown_method(r)} for r in rows])
    df["task"] = df["task"].fillna("") if "task" in df else ""
    df["precision"] = df["precision"].fillna("fp32") if "precision" in df else "fp32"  # rows from before precision was recorded
    grouped = df.groupby(keys, sort=False)["accuracy"]
    out = grouped.agg(mean="mean", std=lambda s: float(s.std(ddof=0)), n="count").reset_index()
    devices = df.groupby(keys, sort=False)["device"].agg(devices_cell)
    return out.merge(devices.reset_index(), on=keys)


def devices_cell(devices: Iterable[Any]) -> str:
    """The device column of an entry: its rows' device, or where they were made on several, each with its row count."""
    counts = Counter(str(d) for d in devices if d == d and d is not None)  # d == d: pandas fills a missing device with NaN
    if len(counts) <= 1:
        return next(iter(counts), "")
    return "; ".join(f"{device} ×{n}" for device, n in sorted(counts.items()))


def robustness_columns(rows: list[dict[str, Any]]) -> dict[tuple, list[str]]:
    """(protocol, method (as shown), run, arch) -> ["LRS mean ± std", "ARS mean ± std"] from the score rows."""
    robust = [{**r, **scores_of(r), "method": shown_method(r)} for r in rows if record_type(r) == "robustness"]
    if not robust:
        return {}
    df = pd.DataFrame(robust)
    out = {}
    for key, group in df.groupby(["protocol", "method", "run_id", "arch"], sort=False):
        out[key] = [f"{group[m].mean():.3f} ± {group[m].std(ddof=0):.3f}" for m in ("lrs", "ars")]
    return out


def current_rows(store: ResultStore) -> tuple[list[dict[str, Any]], int]:
    """Rows under the current card versions, without overrides, of final sets (no snapshots); and how many were left out."""
    hashes = {}
    for pid in list_protocols():
        card = load_protocol(pid)
        if not card.quick:  # smoke-test cards are never leaderboard cards
            hashes[pid] = card.hash
    kept, dropped = [], 0
    for row in store.rows():
        if (row.get("protocol_standard") and hashes.get(row["protocol"]) == row["protocol_hash"]
                and row.get("snapshot_step") is None and row.get("data_complete", True) is not False):
            kept.append(row)
        else:
            dropped += 1
    return kept, dropped


def _store_name(store: ResultStore) -> str:
    """The store as a reader finds it: relative to the working directory when inside it."""
    try:
        return str(store.path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(store.path)


class Citations:
    """Numbered sources of the published numbers a page quotes."""

    def __init__(self, recipes: dict[str, str]) -> None:
        self.recipes, self.numbers = recipes, {}

    def mark(self, p: Published) -> int:
        key = f"{p.citation} — {self.recipes.get(p.recipe, p.recipe)}"
        return self.numbers.setdefault(key, len(self.numbers) + 1)

    def texts(self) -> list[str]:
        """The sources in citation order."""
        return [text for text, _ in sorted(self.numbers.items(), key=lambda kv: kv[1])]

    def lines(self) -> list[str]:
        return [f"{i}. {text}" for i, text in enumerate(self.texts(), start=1)]


def card_recipes() -> set[str]:
    """The published recipes that are the cards' own evaluation (their numbers get a reproduced / not verdict)."""
    return set(_published_toml().get("card_recipes", []))


def published_lookup() -> tuple[dict[tuple[str, str, str, str], Published], dict[str, str]]:
    """(protocol, method, task, arch) -> published number; arch "" stands for the card's first arch."""
    published, recipes = load_published()
    return {(p.protocol, p.method, p.task, p.arch): p for p in published}, recipes


SeedKey = tuple  # (protocol, method as shown, run_id, arch, task, precision)


def per_seed(rows: list[dict[str, Any]]) -> dict[SeedKey, dict[int, float]]:
    """Accuracy by evaluation seed for each (protocol, method as shown, run, arch, task, precision)."""
    out: dict[SeedKey, dict[int, float]] = {}
    for r in rows:
        if record_type(r) != "accuracy":
            continue
        key = (r["protocol"], shown_method(r), r["run_id"], r["arch"], r.get("task") or "", r.get("precision") or "fp32")
        out.setdefault(key, {})[int(r["seed"])] = float(r["accuracy"])
    return out


def seeds_of(r: Any, seeds: dict[SeedKey, dict[int, float]]) -> dict[int, float]:
    """The per-seed accuracies behind one line of `summarize`."""
    return seeds.get((r.protocol, r.method, r.run_id, r.arch, r.task, r.precision), {})


def ranked_mean(card: ProtocolCard, by_arch: dict[str, Any]) -> float | None:
    """What a run is ranked by: the mean over the card's archs of its per-arch means (`summarize` lines), when every
    arch has the card's seed count; None for an incomplete or partial run, which is never ranked."""
    if not all(a in by_arch and int(by_arch[a].n) >= card.seeds for a in card.archs):
        return None
    return sum(by_arch[a].mean for a in card.archs) / len(card.archs)


def mean_std(mean: float, std: float, n: int) -> str:
    """"mean ± std"; a std over one seed is no spread at all, shown as "—"."""
    return f"{mean:.2f} ± {std:.2f}" if n > 1 else f"{mean:.2f} ± —"


def _fmt_ci(e: stats.Estimate) -> str:
    return "—" if e.n < 2 else f"[{e.low:.2f}, {e.high:.2f}]"


def rank_card(card: ProtocolCard, part: pd.DataFrame, seeds: dict[SeedKey, dict[int, float]]) -> dict[str, stats.Ranking | None]:
    """Per task, the ranking of the (method, run, arch) entries that have the card's full seed count (partial runs
    are never ranked)."""
    rankings: dict[str, stats.Ranking | None] = {}
    for task, group in part.groupby("task", sort=False):
        by_seed = {(r.method, r.run_id, r.arch): seeds_of(r, seeds) for r in group.itertuples()}
        full = {k: v for k, v in by_seed.items() if len(v) >= card.seeds}
        rankings[task] = stats.rank(full) if full else None
    return rankings


def ranked_table(card: ProtocolCard, part: pd.DataFrame, pub: dict, cites: Citations,
                 esc: Callable[[Any], str] = cell, scores: dict[tuple, list[str]] | None = None,
                 seeds: dict[SeedKey, dict[int, float]] | None = None, same_recipe: set[str] | None = None,
                 ) -> tuple[list[str], list[list[Any]]]:
    """One row per (method, run, arch, task), ranked by mean within each task: mean ± std, the 95 % CI, the rank
    group (methods tied within noise share it), P(best), and the published number with its verdict and gap.
    Text cells pass through `esc` (markdown escaping by default; the HTML site escapes its own way)."""
    with_tasks = bool((part["task"] != "").any())
    seeds = seeds if seeds is not None else {}
    rankings = rank_card(card, part, seeds)
    table, ranks = [], {}
    # Publishing rule: only entries with the card's full seed count are ranked; partial ones follow, unranked.
    part = part.assign(partial_run=[(len(seeds_of(r, seeds)) or int(r.n)) < card.seeds for r in part.itertuples()])
    part = part.sort_values(["task", "partial_run", "mean"], ascending=[True, True, False])
    for r in part.itertuples():
        values = list(seeds_of(r, seeds).values())
        partial = bool(r.partial_run)
        rank = "—" if partial else ranks.setdefault(r.task, 0) + 1
        if not partial:
            ranks[r.task] = rank
        est = stats.estimate(values) if values else stats.Estimate(r.mean, r.std, int(r.n), float("nan"), float("nan"))
        ranking, key = rankings.get(r.task), (r.method, r.run_id, r.arch)
        group = ranking.group.get(key) if ranking else None
        best = ranking.p_best.get(key) if ranking else None
        p = published_for(pub, card, r.method, r.task, r.arch)
        verdict = stats.verdict(est, p.accuracy, p.recipe in (same_recipe or set())) if p else ""
        group_cell = f"partial, n={len(values) or int(r.n)}" if partial else group if group is not None else "—"
        best_cell = f"{best:.2f}" if best is not None and best == best else "—"
        table.append([*([esc(r.task)] if with_tasks else []), rank, esc(r.method), esc(r.arch), mean_std(r.mean, r.std, int(r.n)),
                      _fmt_ci(est), group_cell, best_cell,
                      r.n, f"{p.accuracy:.1f} [{cites.mark(p)}] {verdict}" if p else "—",
                      f"{r.mean - p.accuracy:+.1f}" if p else "—", esc(r.run_id), esc(r.device),
                      *((scores or {}).get((card.id, r.method, r.run_id, r.arch), ["—", "—"]) if scores else [])])
    headers = [*(["task"] if with_tasks else []), "#", "method", "arch", "accuracy", "95% CI", "group", "P(best)", "n",
               "published", "Δ", "run", "device", *(["LRS", "ARS"] if scores else [])]
    return headers, table


def published_for(pub: dict, card: ProtocolCard, method: str, task: str, arch: str) -> Published | None:
    """The published number quoted beside a method's line (none for a set from a file: its name is only a claim)."""
    if method.endswith(" (external)"):
        return None
    return pub.get((card.id, method, task, arch)) or (pub.get((card.id, method, task, "")) if arch == card.archs[0] else None)


def arch_matrix(card: ProtocolCard, part: pd.DataFrame, pub: dict, cites: Citations,
                esc: Callable[[Any], str] = cell) -> tuple[list[str], list[list[Any]]]:
    """Method × arch: mean ± std per arch with its drop from the card's first arch (in brackets), the mean over
    archs, ranked by that mean. Rule for missing cells: only complete rows (every arch, the card's seed count) are
    ranked; an incomplete row is listed after them, marked, with no rank, so it is never ranked below a method it
    beats. Published rows follow their method."""
    archs, ref = list(card.archs), card.archs[0]
    table: list[tuple[float, list[Any]]] = []
    for (method, run_id), group in part.groupby(["method", "run_id"], sort=False):
        means = {r.arch: r for r in group.itertuples()}
        cells = []
        for arch in archs:
            r = means.get(arch)
            drop = f" ({r.mean - means[ref].mean:+.1f})" if r is not None and arch != ref and ref in means else ""
            cells.append(f"{mean_std(r.mean, r.std, int(r.n))}{drop}" if r is not None else "—")
        ranked_by = ranked_mean(card, means)
        complete = ranked_by is not None
        overall = ranked_by if complete else float("nan")
        n = min(int(r.n) for r in means.values())
        table.append((overall, [esc(method), *cells, f"{overall:.2f}" if complete else "—", n, esc(run_id)]))
        quoted = {a: published_for(pub, card, method, "", a) for a in archs}
        if any(quoted.values()):
            pcells = [f"{q.accuracy:.1f} [{cites.mark(q)}]" if q else "—" for q in quoted.values()]
            table.append((overall - 1e-9, [esc(f"{method} (published)"), *pcells, "—", "—", "—"]))
    table.sort(key=lambda item: -item[0] if item[0] == item[0] else float("inf"))
    rows, rank = [], 0
    for overall, row in table:
        is_published = row[0].endswith("(published)")
        if is_published:
            rows.append(["", *row])
        elif overall == overall:  # complete: ranked
            rank += 1
            rows.append([rank, *row])
        else:
            rows.append(["incomplete", *row])
    return ["#", "method", *archs, "mean over archs", "n (min)", "run"], rows


def render(store: ResultStore) -> str:
    stored, dropped = current_rows(store)
    rows = track_rows(stored)  # adversarial and privacy rows: one ranked task per measurement
    pub, recipes = published_lookup()
    cites = Citations(recipes)
    summary = summarize(rows)
    robust = robustness_columns(rows)
    seeds, same = per_seed(rows), card_recipes()
    lines = ["# ddbench leaderboard", "",
             "Final-epoch test accuracy (%), mean ± std (population) over evaluation seeds; "
             f"every number comes from `{_store_name(store)}`. Published numbers are quoted with their source; "
             "the recipe behind each is in the notes below — a different recipe is a yardstick, not a tie. "
             "Cross-architecture cards show a method × arch matrix: each cell's bracket is its drop from the card's first arch. "
             "LRS / ARS: DD-Ranking's label- and augmentation-robust scores in [0, 1] (`ddbench robustness`), where computed. "
             "95% CI: of the mean over seeds (t). Group: methods whose paired difference from the group's first method is not "
             "significant (paired t over shared seeds, Holm-corrected, 5%) share its number. P(best): share of 2,000 paired "
             "bootstrap resamples of the seeds in which the method has the highest mean. Verdict beside a published number "
             "made with the card's recipe: reproduced when it lies inside our 95% CI or within max(1 std, 1 point) of our "
             "mean; other recipes are marked as such. `ddbench compare A B --protocol P` prints the paired test.", ""]
    if summary.empty:
        lines.append("_No results yet. Run `ddbench evaluate --method random --protocol mnist-ipc10`._")
    for protocol in sorted(summary["protocol"].unique()) if not summary.empty else []:
        card = load_protocol(protocol)
        part = summary[summary["protocol"] == protocol]
        for precision in sorted(part["precision"].unique()):
            sub = part[part["precision"] == precision]
            title = protocol if precision == card.precision else f"{protocol} ({precision})"
            scores = {k: v for k, v in robust.items() if k[0] == protocol}
            headers, table = (arch_matrix(card, sub, pub, cites) if len(card.archs) > 1
                              else ranked_table(card, sub, pub, cites, scores=scores, seeds=seeds, same_recipe=same))
            lines += [f"## {cell(title)}", "", f"{cell(card.description)} · card v{card.version} `{card.hash}`", "",
                      tabulate(table, headers=headers, tablefmt="github", disable_numparse=True), ""]
    for (dataset, ipc), table in track_summary(stored, shown_method).items():
        lines += [f"## Beyond accuracy: {cell(dataset)} at IPC {ipc}", "",
                  "The adversarial and privacy cards' means over seeds: accuracy on clean and attacked test images (L∞, "
                  "pixel units; the cards give ε) and the membership AUC of the stronger attack, loss or calibrated by "
                  "shadow networks (0.5 is chance; source: the images a set was made from, n/a for sets that record none). Each track is "
                  "ranked in its card's own table above.", "",
                  tabulate(table, headers=SUMMARY_HEADERS, tablefmt="github", disable_numparse=True), ""]
    if cites.numbers:
        lines += ["## Sources of published numbers", "", *cites.lines(), ""]
    if dropped:
        lines += [f"_{dropped} row(s) from quick cards, older card versions, shortened recipes, snapshots or partial data "
                  "are not shown._", ""]
    return "\n".join(lines)


def publish(store: ResultStore, out: str | Path | None = None) -> Path:
    path = Path(out) if out else store.directory / "LEADERBOARD.md"
    if path.is_dir():
        raise DDBenchError(f"--out {path} is a directory; give a file name")
    with atomic_write(path, "w") as handle:
        handle.write(render(store))
    return path
