"""Rows and card hashes equal to those the code gave before the redesign (issue 20): tests/golden/rows.json was
written by tests/golden/make_golden_rows.py on the flat package (commit 20d336d)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def test_rows_and_card_hashes_equal_the_golden_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("DDBENCH_CACHE", str(tmp_path))
    spec = importlib.util.spec_from_file_location("make_golden_rows", GOLDEN / "make_golden_rows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    now = module.golden_rows(tmp_path)
    before = json.loads((GOLDEN / "rows.json").read_text())
    assert now["rows"] == before["rows"]
    changed = {k: (v, now["card_hashes"].get(k)) for k, v in before["card_hashes"].items() if now["card_hashes"].get(k) != v}
    assert not changed, f"card hashes changed: {changed}"
