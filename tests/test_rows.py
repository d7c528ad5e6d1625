"""The one row schema (ddbench.store.rows): rows are built and checked in one place; old rows still read."""
from __future__ import annotations

import pytest

from ddbench.core.errors import DDBenchError
from ddbench.publish.leaderboard import robustness_columns, summarize
from ddbench.store.results import ResultStore
from ddbench.store.rows import REQUIRED_FIELDS, ROW_SCHEMA, build_row, build_score_record, record_type, scores_of

ROW = {"schema": ROW_SCHEMA, "method": "random", "method_config": {}, "run_id": "cfg-1", "set_id": "s", "distill_seed": 0,
       "protocol": "mnist-ipc1", "protocol_version": 1, "protocol_hash": "h", "protocol_standard": True, "dataset": "mnist",
       "ipc": 1, "arch": "convnet", "seed": 0, "accuracy": 50.0, "n_test": 10, "ddbench_version": "0", "git_sha": "x",
       "torch_version": "t", "device": "cpu", "wall_time_s": 1.0, "peak_mem_mb": 1.0, "timestamp": "now"}
SCORES = {"ior": 0.1, "hlr": 0.2, "lrs": 0.4, "gain_aug": 0.1, "gain_plain": 0.1, "ars": 0.5}


def test_build_row_refuses_unknown_fields_wrong_types_and_missing_fields():
    assert build_row(**ROW)["accuracy"] == 50.0
    with pytest.raises(DDBenchError, match="does not name: acuracy"):
        build_row(**ROW, acuracy=1.0)
    with pytest.raises(DDBenchError, match="seed = '0' is not of type"):
        build_row(**{**ROW, "seed": "0"})
    with pytest.raises(DDBenchError, match="protocol_standard = 1 is not of type"):
        build_row(**{**ROW, "protocol_standard": 1})
    with pytest.raises(DDBenchError, match="accuracy = True is not of type"):
        build_row(**{**ROW, "accuracy": True})
    with pytest.raises(DDBenchError, match="lacks accuracy"):
        build_row(**{k: v for k, v in ROW.items() if k != "accuracy"})
    assert set(REQUIRED_FIELDS) <= set(ROW)


def test_robustness_scores_are_their_own_record_type_and_schema_1_rows_still_read(tmp_path):
    keys = {k: ROW[k] for k in ("schema", "run_id", "protocol", "protocol_version", "protocol_hash", "protocol_standard",
                                "dataset", "ipc", "arch", "seed", "method", "method_config", "set_id", "ddbench_version",
                                "git_sha", "torch_version", "device", "timestamp")}
    record = build_score_record(**keys, task="robust", scores=SCORES, inputs={"accuracy": 50.0})
    assert record_type(record) == "robustness" and "accuracy" not in record and scores_of(record) == SCORES
    with pytest.raises(DDBenchError, match="does not name: accuracy"):
        build_score_record(**keys, task="robust", scores=SCORES, inputs={}, accuracy=50.0)
    old = {**ROW, "schema": 1, "task": "robust", "seed": 1, **SCORES}  # schema 1: an accuracy-shaped row with a tag
    assert record_type(old) == "robustness" and scores_of(old) == SCORES and record_type(ROW) == "accuracy"
    store = ResultStore(tmp_path)
    assert store.append([build_row(**ROW), record, old]) == 3
    rows = store.rows()
    assert list(summarize(rows)["n"]) == [1]  # only the accuracy row is averaged
    (cells,) = robustness_columns(rows).values()
    assert cells == ["0.400 ± 0.000", "0.500 ± 0.000"]  # both record versions give the columns
