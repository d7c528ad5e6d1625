"""The one result-row schema: its fields (the `Row` TypedDict), its version, its key, and `build_row`.

Every row is made by `build_row`, which refuses a field the schema does not name, a field of the
wrong type and a missing required field, so a new field is added here (and ROW_SCHEMA bumped) or
not at all. Readers accept every version up to ROW_SCHEMA: version 1 rows (written before the
schema was checked) have the same fields.
"""
from __future__ import annotations

import math
import types
from typing import Any, Literal, TypedDict, Union, get_args, get_origin, get_type_hints

from ddbench.core.errors import DDBenchError

LabelMode = Literal["hard", "soft", "regression", "none"]  # "none": images only (self-supervised pre-training)
LABEL_MODES: tuple[LabelMode, ...] = get_args(LabelMode)

ROW_SCHEMA = 4  # 2: rows built and checked by build_row (fields as 1); 3: + set_storage, distill_cost; 4: + adversarial, privacy
READABLE_SCHEMAS = (1, 2, 3, 4)
KEY_FIELDS = ("run_id", "protocol", "protocol_hash", "arch", "seed")
OPTIONAL_KEY_FIELDS = ("task",)  # ssl-transfer rows: "<downstream>@<label fraction>"
REQUIRED_FIELDS = (
    "schema", "method", "method_config", "run_id", "set_id", "distill_seed", "protocol", "protocol_version",
    "protocol_hash", "protocol_standard", "dataset", "ipc", "arch", "seed", "accuracy", "n_test",
    "ddbench_version", "git_sha", "torch_version", "device", "wall_time_s", "peak_mem_mb", "timestamp",
)


class Record(TypedDict, total=False):
    """What every stored record carries: its key (run, card, arch, seed, task), the set it is about, and provenance."""

    schema: int
    run_id: str
    protocol: str
    protocol_version: int
    protocol_hash: str
    protocol_standard: bool
    protocol_overrides: dict[str, Any]
    precision: str  # the card's precision policy the network ran under: fp32, tf32 or bf16
    dataset: str
    data_fingerprint: str  # sha256 of the dataset arrays the row was made on
    data_complete: bool  # False: a partial copy of the dataset (rows then never published)
    ipc: int
    epochs: int
    method: str  # the registered method that made the set, or (external) the name the set claims
    external: bool  # the set was evaluated from a file: its method name is the file's claim, not ours
    method_config: dict[str, Any]
    set_id: str
    distill_seed: int | None
    snapshot_step: int | None
    arch: str
    seed: int
    task: str
    ddbench_version: str
    git_sha: str
    code_version: str
    torch_version: str
    device: str
    host: str
    timestamp: str


class Row(Record, total=False):
    """One result row: a network trained under one card on one set with one seed, its accuracy and its cost."""

    precision_detail: str  # what was in effect on the device (e.g. "cuda: matmul fp32, conv tf32")
    distill_time_s: float | None
    downstream: str
    label_fraction: float
    accuracy: float
    init_accuracy: float
    n_test: int
    label_mode: str
    lr: float | None
    learned_lr_used: bool
    batch_mode: str
    wall_time_s: float
    peak_mem_mb: float  # of the evaluation stage that made the row (see peak_mem_kind)
    peak_mem_kind: str
    set_storage: dict[str, Any]  # bytes of the set's images, labels, aux tensors, ZCA, and of its budget of real images
    distill_cost: dict[str, Any] | None  # what making the set cost (device, seconds by stage, peak memory); None: not ours
    adversarial: dict[str, Any]  # adversarial cards: accuracy under each attack, the library, its recipe and seconds
    privacy: dict[str, Any]  # privacy cards: membership-inference AUC and TPR at low FPR, per level and attack


ROBUST_TASK = "robust"  # the key's task of a robustness record (and, in schema 1, of robustness rows)
SCORE_NAMES = ("ior", "hlr", "lrs", "gain_aug", "gain_plain", "ars")
SCORE_REQUIRED = (
    "record", "schema", "run_id", "protocol", "protocol_version", "protocol_hash", "protocol_standard", "dataset", "ipc",
    "arch", "seed", "task", "method", "method_config", "set_id", "scores", "inputs", "ddbench_version", "git_sha",
    "torch_version", "device", "timestamp",
)


class ScoreRecord(Record, total=False):
    """A score record (not an accuracy row): DD-Ranking's robustness scores of one (set, card, arch, seed),
    keyed like the accuracy row it scores (task "robust"), with the accuracies it was computed from in `inputs`."""

    record: str  # "robustness"
    scores: dict[str, Any]  # ior, hlr, lrs, gain_aug, gain_plain, ars
    inputs: dict[str, Any]  # accuracy, random_set_id, random_distill_seed, full_data_accuracy, full_data_recipe, lambda


def record_type(row: dict[str, Any]) -> str:
    """"accuracy" or "robustness": a row's record type (schema 1 stored robustness scores as rows tagged task "robust")."""
    return row.get("record") or ("robustness" if row.get("task") == ROBUST_TASK else "accuracy")


def scores_of(row: dict[str, Any]) -> dict[str, Any]:
    """A robustness record's scores, from either schema (2: `scores`; 1: flat fields)."""
    return row.get("scores") or {k: row[k] for k in SCORE_NAMES if k in row}


_CHECKABLE = {int: (int,), float: (int, float), str: (str,), bool: (bool,), dict: (dict,)}


def _allowed(hint: Any) -> tuple[type, ...] | None:
    """The Python types a field's hint admits (None: not checked)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        out: tuple[type, ...] = ()
        for arg in get_args(hint):
            if arg is type(None):
                out += (type(None),)
            else:
                more = _allowed(arg)
                if more is None:
                    return None
                out += more
        return out
    return _CHECKABLE.get(origin or hint)


def build_row(**fields: Any) -> Row:
    """A result row from `fields`, checked against the schema: every field named by `Row`, of its type
    (bool is not an int here), and every required field present."""
    _check(Row, REQUIRED_FIELDS, fields)
    return Row(**fields)  # type: ignore[typeddict-item]


def build_score_record(**fields: Any) -> ScoreRecord:
    """A robustness record from `fields`, checked against `ScoreRecord` as `build_row` checks rows."""
    _check(ScoreRecord, SCORE_REQUIRED, {"record": "robustness", **fields})
    return ScoreRecord(record="robustness", **fields)  # type: ignore[typeddict-item]


def required_fields(row: dict[str, Any]) -> tuple[str, ...]:
    """The fields a stored row or record must have, by its record type."""
    return SCORE_REQUIRED if row.get("record") == "robustness" else REQUIRED_FIELDS


def _check(schema: type, required: tuple[str, ...], fields: dict[str, Any]) -> None:
    hints = get_type_hints(schema)
    unknown = sorted(set(fields) - set(hints))
    if unknown:
        raise DDBenchError(f"result row has field(s) the schema does not name: {', '.join(unknown)} "
                           f"(ddbench.store.rows.{schema.__name__})")
    for name, value in fields.items():
        allowed = _allowed(hints[name])
        if allowed is None:
            continue
        if isinstance(value, bool) and bool not in allowed:
            ok = False
        else:
            ok = isinstance(value, allowed)
        if not ok:
            raise DDBenchError(f"result row field {name} = {value!r} is not of type {hints[name]}")
    missing = [k for k in required if k not in fields]
    if missing:
        raise DDBenchError(f"result row lacks {', '.join(missing)}")


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float replaced by None: the store and manifests stay valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def row_key(row: dict[str, Any]) -> tuple:
    return tuple(row[k] for k in KEY_FIELDS) + tuple(row.get(k, "") for k in OPTIONAL_KEY_FIELDS)
