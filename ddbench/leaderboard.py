"""Publish the result store as markdown: one table per protocol, methods ranked, published numbers beside.

Only rows made under the current version of a card (its hash), without overrides, of final sets, on a
complete copy of the dataset count; rows from edited cards, shortened recipes, distillation snapshots
or partial data are counted in a footnote and left out. Standard
deviations are population std (ddof = 0), the field's convention (numpy's default in DC/MTT).
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import tomllib
from tabulate import tabulate

from ddbench.errors import DDBenchError
from ddbench.protocol import list_protocols, load_protocol
from ddbench.results import ResultStore


@dataclass(frozen=True)
class Published:
    protocol: str
    method: str
    accuracy: float
    citation: str
    recipe: str
    task: str = ""  # ssl-transfer: "<downstream>@<fraction>"


def load_published() -> tuple[list[Published], dict[str, str]]:
    text = (resources.files("ddbench.protocols") / "published.toml").read_text()
    data = tomllib.loads(text)
    recipes = data.get("recipes", {})
    entries = [Published(e["protocol"], e["method"], float(e["accuracy"]), e["citation"], e.get("recipe", ""), e.get("task", ""))
               for e in data.get("published", [])]
    return entries, recipes


def cell(text: Any) -> str:
    """A markdown table cell: pipes, backslashes and HTML escaped, line breaks flattened (no injected rows)."""
    value = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(value.split())


def summarize(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Mean ± std and n per (protocol, method, run, arch, task, precision); task is "" except on ssl-transfer
    cards; rows of different precision are never averaged together. A set evaluated from a file shows the
    method it claims, marked external."""
    keys = ["protocol", "method", "run_id", "arch", "task", "precision"]
    if not rows:
        return pd.DataFrame(columns=[*keys, "mean", "std", "n", "device"])
    rows = [{**r, "method": f"{r['method']} (external)"} if r.get("external") else r for r in rows]
    df = pd.DataFrame(rows)
    df["task"] = df["task"].fillna("") if "task" in df else ""
    df["precision"] = df["precision"].fillna("fp32") if "precision" in df else "fp32"  # rows from before precision was recorded
    grouped = df.groupby(keys, sort=False)["accuracy"]
    out = grouped.agg(mean="mean", std=lambda s: float(s.std(ddof=0)), n="count").reset_index()
    devices = df.groupby(keys, sort=False)["device"].agg(lambda s: sorted(set(s))[0])
    return out.merge(devices.reset_index(), on=keys)


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


def render(store: ResultStore) -> str:
    rows, dropped = current_rows(store)
    published, recipes = load_published()
    pub = {(p.protocol, p.method, p.task): p for p in published}
    summary = summarize(rows)
    lines = ["# ddbench leaderboard", "",
             "Final-epoch test accuracy (%), mean ± std (population) over evaluation seeds; "
             f"every number comes from `{_store_name(store)}`. Published numbers are quoted with their source; "
             "the recipe behind each is in the notes below — a different recipe is a yardstick, not a tie.", ""]
    if summary.empty:
        lines.append("_No results yet. Run `ddbench evaluate --method random --protocol mnist-ipc10`._")
    cited: dict[str, int] = {}
    for protocol in sorted(summary["protocol"].unique()) if not summary.empty else []:
        card = load_protocol(protocol)
        part = summary[summary["protocol"] == protocol].sort_values(["task", "mean"], ascending=[True, False])
        with_tasks = bool((part["task"] != "").any())
        table = []
        ranks: dict[str, int] = {}
        for r in part.itertuples():
            rank = ranks[r.task] = ranks.get(r.task, 0) + 1  # ranked within each task
            p = None if r.method.endswith(" (external)") else pub.get((protocol, r.method, r.task))
            note = ""
            if p:
                key = f"{p.citation} — {recipes.get(p.recipe, p.recipe)}"
                cited.setdefault(key, len(cited) + 1)
                note = f"[{cited[key]}]"
            table.append([*([cell(r.task)] if with_tasks else []), rank, cell(r.method), cell(r.arch),
                          f"{r.mean:.2f} ± {r.std:.2f}", r.n, f"{p.accuracy:.1f} {note}" if p else "—",
                          f"{r.mean - p.accuracy:+.1f}" if p else "—", cell(r.run_id), cell(r.device)])
        headers = [*(["task"] if with_tasks else []), "#", "method", "arch", "accuracy", "n", "published", "Δ", "run", "device"]
        lines += [f"## {protocol}", "", f"{card.description} · card v{card.version} `{card.hash}`", "",
                  tabulate(table, headers=headers, tablefmt="github"), ""]
    if cited:
        lines += ["## Sources of published numbers", ""]
        lines += [f"{i}. {text}" for text, i in sorted(cited.items(), key=lambda kv: kv[1])]
        lines.append("")
    if dropped:
        lines += [f"_{dropped} row(s) from older card versions, shortened recipes, snapshots or partial data are not shown._", ""]
    return "\n".join(lines)


def publish(store: ResultStore, out: str | Path | None = None) -> Path:
    from ddbench.paths import atomic_write

    path = Path(out) if out else store.directory / "LEADERBOARD.md"
    if path.is_dir():
        raise DDBenchError(f"--out {path} is a directory; give a file name")
    with atomic_write(path, "w") as handle:
        handle.write(render(store))
    return path
