"""The adversarial and privacy tracks on the leaderboard: each measurement as a task of its card, so that it is ranked
with the accuracy's statistics (CI, rank groups, P(best)), and one summary per dataset and IPC of
method × (clean, PGD, membership AUC).

Robustness tasks are accuracies (%) under each attack and BEARD's scores RR, AE and CREI (ddbench.engine.beard): higher
is better. Privacy tasks are 100 × (1 − AUC) of each
membership attack: 50 is chance (nothing leaks), 0 is a perfect attack; higher is better, so both rank the same way.
"""
from __future__ import annotations

import statistics
from typing import Any

from ddbench.engine.beard import beard_scores
from ddbench.store.rows import record_type

ATTACKS = ("clean", "fgsm", "pgd", "apgd_ce")
LEVELS = ("population", "source")
MIA = ("loss", "calibrated")
BEARD = {"rr": "BEARD RR", "ae": "BEARD AE", "crei": "BEARD CREI"}


def _privacy_value(auc: float) -> float:
    return round(100.0 * (1.0 - auc), 4)


def track_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of adversarial and privacy cards split into one row per measurement (its `task`, its value as `accuracy`);
    every other row unchanged."""
    out = []
    for row in rows:
        if record_type(row) != "accuracy" or not ("adversarial" in row or "privacy" in row):
            out.append(row)
            continue
        if "adversarial" in row:
            accuracy = row["adversarial"]["accuracy"]
            out += [{**row, "task": attack, "accuracy": accuracy[attack]} for attack in ATTACKS if attack in accuracy]
            out += [{**row, "task": BEARD[k], "accuracy": v} for k, v in beard_scores(row["adversarial"]).items()]
        if "privacy" in row:
            for level in LEVELS:
                found = row["privacy"].get(level)
                if isinstance(found, dict):
                    out += [{**row, "task": f"{level} {mia}: 100(1-AUC)", "accuracy": _privacy_value(found[mia]["auc"])}
                            for mia in MIA if mia in found]
    return out


def _mean(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f}" if values else "—"


def track_summary(rows: list[dict[str, Any]], shown: Any) -> dict[tuple[str, int], list[list[str]]]:
    """(dataset, ipc) -> table rows [method, seeds, clean %, PGD %, APGD-CE %, BEARD RR, BEARD CREI, population MIA AUC,
    source MIA AUC] from the adversarial and privacy cards' rows (means over seeds; each network's AUC is its stronger
    membership attack's, loss or calibrated: a leak is at least what the best attack finds)."""
    cells: dict[tuple[str, int, str], dict[str, list[float]]] = {}
    for row in rows:
        if record_type(row) != "accuracy" or not ("adversarial" in row or "privacy" in row):
            continue
        key = (row["dataset"], int(row["ipc"]), shown(row))
        bucket = cells.setdefault(key, {})
        if "adversarial" in row:
            for attack in ("clean", "pgd", "apgd_ce"):
                if attack in row["adversarial"]["accuracy"]:
                    bucket.setdefault(attack, []).append(row["adversarial"]["accuracy"][attack])
            for score, value in beard_scores(row["adversarial"]).items():
                bucket.setdefault(score, []).append(value)
        if "privacy" in row:
            for level in LEVELS:
                found = row["privacy"].get(level)
                if isinstance(found, dict):
                    bucket.setdefault(level, []).append(max(found[mia]["auc"] for mia in MIA if mia in found))
                elif found is not None:
                    bucket.setdefault(f"{level}_na", []).append(1.0)
    tables: dict[tuple[str, int], list[list[str]]] = {}
    for (dataset, ipc, method), b in sorted(cells.items()):
        population = f"{statistics.mean(b['population']):.3f}" if b.get("population") else "—"
        source = f"{statistics.mean(b['source']):.3f}" if b.get("source") else ("n/a" if b.get("source_na") else "—")
        seeds = max(len(b.get("clean", [])), len(b.get("population", [])), len(b.get("source_na", [])))
        tables.setdefault((dataset, ipc), []).append(
            [method, str(seeds), _mean(b.get("clean", [])), _mean(b.get("pgd", [])), _mean(b.get("apgd_ce", [])),
             _mean(b.get("rr", [])), _mean(b.get("crei", [])), population, source])
    return tables


SUMMARY_HEADERS = ["method", "seeds (most of any card)", "clean %", "PGD %", "APGD-CE %", "BEARD RR", "BEARD CREI",
                   "MIA AUC (population)", "MIA AUC (source)"]
