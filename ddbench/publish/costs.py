"""What a set costs to make and to store, per (card, method, run), and the accuracy / cost Pareto front.

Cost is device-seconds: the distillation's own wall time plus the seconds its artefacts (experts, teacher,
selection network) recorded, from each row's `distill_cost`; storage is the bytes of the set's images, labels and
auxiliary tensors (`set_storage`), against the bytes of as many real uint8 images as its budget allows.
"""
from __future__ import annotations

import re
from typing import Any

import pandas as pd

from ddbench.publish.leaderboard import shown_method
from ddbench.store.rows import record_type

COLUMNS = ["protocol", "method", "run_id", "cost_s", "unrecorded", "cost_device", "cost_by_device", "distill_peak_mb",
           "peak_kind", "total_bytes", "real_bytes", "labels_outweigh_images"]


def _cost_seconds(cost: dict[str, Any] | None, distill_time: Any) -> float | None:
    if isinstance(cost, dict) and isinstance(cost.get("distill_s"), (int, float)):
        artefacts = cost.get("artefacts") or {}
        return float(cost["distill_s"]) + sum(float(a.get("seconds") or 0.0) for a in artefacts.values() if isinstance(a, dict))
    return float(distill_time) if isinstance(distill_time, (int, float)) else None


def device_kind(device: Any) -> str:
    """The device a cost was measured on, without the CPU's thread count: "cpu (x86_64)", "NVIDIA H100 80GB HBM3"."""
    return re.sub(r", \d+ threads\)$", ")", str(device)) if device else ""


def _unrecorded(cost: dict[str, Any] | None) -> int:
    """Artefacts the set needed whose time no file recorded: its cost is then a lower bound."""
    artefacts = (cost or {}).get("artefacts") or {}
    return sum(max(0, int(a.get("tasks") or 0) - int(a.get("recorded") or 0)) for a in artefacts.values() if isinstance(a, dict))


def set_costs(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One line per (protocol, method, run): mean device-seconds to make a set (and `unrecorded`, the most artefacts a
    set of the run needed without a recorded time: then the mean is a lower bound), the distillation's peak memory,
    and the set's stored bytes against its real-image budget (NaN where the rows predate these fields).

    Seconds are averaged per kind of device only (a CPU's thread count aside): where a run's sets were made on
    several, `cost_s` is the mean on the device that made most of them (`cost_device`; the peak memory is that
    device's too) and `cost_by_device` lists (device, mean seconds, unrecorded) for each; it is empty otherwise."""
    out = []
    for r in rows:
        if record_type(r) != "accuracy":
            continue
        cost, storage = r.get("distill_cost"), r.get("set_storage") or {}
        out.append({"protocol": r["protocol"], "method": shown_method(r), "run_id": r["run_id"],
                    "cost_s": _cost_seconds(cost, r.get("distill_time_s")), "unrecorded": _unrecorded(cost),
                    "cost_device": (cost or {}).get("device") or r.get("device"),
                    "distill_peak_mb": (cost or {}).get("peak_mem_mb"), "peak_kind": (cost or {}).get("peak_mem_kind"),
                    "total_bytes": storage.get("total_bytes"), "real_bytes": storage.get("real_bytes"),
                    "labels_outweigh_images": bool(storage.get("labels_outweigh_images", False))})
    if not out:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.DataFrame(out)
    numeric = ["cost_s", "distill_peak_mb", "total_bytes", "real_bytes"]
    df[numeric] = df[numeric].apply(pd.to_numeric, errors="coerce")
    keys = ["protocol", "method", "run_id"]
    df["cost_device"] = [device_kind(d) for d in df["cost_device"]]
    per_device = (df.groupby([*keys, "cost_device"], sort=False)
                  .agg(cost_s=("cost_s", "mean"), unrecorded=("unrecorded", "max"), distill_peak_mb=("distill_peak_mb", "mean"),
                       peak_kind=("peak_kind", "first"), n=("cost_s", "size")).reset_index())
    out_df = df.groupby(keys, sort=False).agg({"total_bytes": "mean", "real_bytes": "mean", "labels_outweigh_images": "max"}).reset_index()
    # seconds and peak memory on different devices are not averaged: a run shows its most used device's (the first of
    # a tie), and lists every device's seconds
    groups: dict[tuple, list[Any]] = {}
    for r in per_device.itertuples(index=False):
        groups.setdefault((r.protocol, r.method, r.run_id), []).append(r)
    devices = [groups[k] for k in zip(out_df["protocol"], out_df["method"], out_df["run_id"])]
    main = [max(group, key=lambda d: d.n) for group in devices]
    for column in ("cost_s", "unrecorded", "distill_peak_mb", "peak_kind"):
        out_df[column] = [getattr(m, column) for m in main]
    out_df["cost_device"] = [m.cost_device or None for m in main]
    out_df["cost_by_device"] = [[(d.cost_device or "unknown device", d.cost_s, int(d.unrecorded)) for d in group] if len(group) > 1 else []
                                for group in devices]
    return out_df[COLUMNS]


def pareto_front(points: list[tuple[str, float, float]]) -> set[str]:
    """Names of the points (name, cost, accuracy) no other point beats on both: cheaper-or-equal and at least as
    accurate, strictly better on one."""
    front = set()
    for name, cost, acc in points:
        dominated = any((c <= cost and a >= acc) and (c < cost or a > acc) for n, c, a in points if n != name)
        if not dominated:
            front.add(name)
    return front


def storage_cell(total: float, real: float, outweigh: bool) -> str:
    """E.g. "4.0× real" (and a warning when soft labels weigh more than the images)."""
    if not (total == total and real == real and real):
        return "—"
    return f"{total / real:.1f}× real" + (" (labels > images)" if outweigh else "")
