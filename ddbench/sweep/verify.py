"""Re-run one seed of a stored row and say whether it reproduces.

The row names everything needed: its card (id and hash), method and config (or, for a set
evaluated from a file, the set's content hash), arch, seed and the data's fingerprint. The
network is trained again from scratch in a private store and cache (the set distilled anew), and
the accuracy compared: bitwise where the device (CPU model and threads, or GPU), torch version and
batch mode match the row's, else within a stated tolerance.
"""
from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ddbench.core.errors import DDBenchError
from ddbench.distill.registry import create_method
from ddbench.kinds import load_protocol
from ddbench.store.distilled import DistilledSet
from ddbench.store.results import ResultStore
from ddbench.store.rows import record_type
from ddbench.sweep.evaluate import EvalOptions, evaluate_method, evaluate_set

TOLERANCE = 0.5  # accuracy points, across devices or library versions (float non-associativity)


@dataclass(frozen=True)
class Verdict:
    row: dict[str, Any]
    accuracy: float
    bitwise: bool  # the comparison was exact (same device, torch version and batch mode)
    reproduced: bool

    def line(self) -> str:
        r = self.row
        how = "bitwise" if self.bitwise else f"within {TOLERANCE} points"
        word = "reproduced" if self.reproduced else "NOT reproduced"
        return (f"{word} ({how}): {r['protocol']} {r['method']} {r['arch']} seed {r['seed']}: stored {r['accuracy']}, "
                f"re-run {self.accuracy}")


def pick_row(store: ResultStore, protocol: str | None, method: str | None, seed: int | None) -> dict[str, Any]:
    """The first standard row matching the filters (of a registered method, or of a set file); a row whose method
    config is not an object is refused (it cannot be re-run)."""
    row = _pick(store, protocol, method, seed)
    if not isinstance(row.get("method_config"), dict):
        raise DDBenchError(f"the row of {row['method']} seed {row['seed']} on {row['protocol']} has a method_config that is "
                           f"{type(row.get('method_config')).__name__}, not an object: it cannot be re-run")
    return row


def _pick(store: ResultStore, protocol: str | None, method: str | None, seed: int | None) -> dict[str, Any]:
    for row in store.rows():
        if (record_type(row) == "accuracy" and row.get("protocol_standard") and not row.get("snapshot_step")
                and (protocol is None or row["protocol"] == protocol)
                and (method is None or row["method"] == method) and (seed is None or row["seed"] == seed)):
            return row
    raise DDBenchError(f"no standard row in {store.path} matches protocol={protocol} method={method} seed={seed}")


def verify_row(row: dict[str, Any], device: torch.device, data_root: str | Path | None = None,
               distilled: str | Path | None = None) -> Verdict:
    card = load_protocol(row["protocol"])
    if card.hash != row["protocol_hash"]:
        raise DDBenchError(f"the row was made under another version of card '{card.id}' (hash {row['protocol_hash']}, "
                           f"now {card.hash}); it cannot be re-run as it was")
    with tempfile.TemporaryDirectory(prefix="ddbench-verify-") as tmp:
        opts = EvalOptions(device=device, store=ResultStore(Path(tmp) / "store"), data_root=data_root, archs=[row["arch"]],
                           only_seeds=(int(row["seed"]),), progress=False, cache_dir=Path(tmp) / "cache", mode="loop")
        if row["run_id"].startswith("set-"):
            if distilled is None:
                raise DDBenchError(f"row {row['run_id']} was made from a set file; pass it with --distilled")
            dset = DistilledSet.load(distilled)
            if dset.set_id != row["set_id"]:
                raise DDBenchError(f"{distilled} is set {dset.set_id}, the row's set is {row['set_id']}")
            rows = evaluate_set(dset, card, dataclasses.replace(opts, external=bool(row.get("external"))))
        else:
            method = create_method(row["method"], **row["method_config"])
            rows = evaluate_method(method, card, opts)
    again = next((r for r in rows if r["seed"] == row["seed"] and r.get("task", "") == row.get("task", "")), None)
    if again is None:
        raise DDBenchError("the re-run produced no row for that seed")
    if row.get("data_fingerprint") and again["data_fingerprint"] != row["data_fingerprint"]:
        raise DDBenchError(f"the data differs from the row's (fingerprint {again['data_fingerprint']} vs {row['data_fingerprint']})")
    bitwise, same = compare_accuracies(row, again)
    return Verdict(row, again["accuracy"], bitwise, same)


def compare_accuracies(row: dict[str, Any], again: dict[str, Any]) -> tuple[bool, bool]:
    """(compared bitwise?, reproduced?). Exact only on the very same kind of CPU (model and thread count), library
    version and batch mode; a GPU is not bitwise repeatable (cuDNN's autotuned kernels, atomic adds in the DSA crop's
    backward), so there, as across devices, a re-run reproduces a row within TOLERANCE points."""
    bitwise = (again["device"] == row["device"] and str(row["device"]).startswith("cpu")
               and again["torch_version"] == row["torch_version"]
               and again["batch_mode"] == row.get("batch_mode", again["batch_mode"]))
    same = again["accuracy"] == row["accuracy"] if bitwise else abs(again["accuracy"] - row["accuracy"]) <= TOLERANCE
    return bitwise, same
