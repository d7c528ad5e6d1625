"""Rows and card hashes equal to those the code gave before the redesign (issue 20): tests/golden/rows.json was
written by tests/golden/make_golden_rows.py on the flat package (commit 20d336d); MTT's pixels, which its set id
hashes, are compared within float noise against tests/golden/mtt_pixels.safetensors."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from safetensors.torch import load_file

GOLDEN = Path(__file__).parent / "golden"


def test_rows_and_card_hashes_equal_the_golden_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("DDBENCH_CACHE", str(tmp_path))
    spec = importlib.util.spec_from_file_location("make_golden_rows", GOLDEN / "make_golden_rows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    now = module.golden_rows(tmp_path)
    before = json.loads((GOLDEN / "rows.json").read_text())
    assert [_portable(r) for r in now["rows"]] == [_portable(r) for r in before["rows"]]
    changed = {k: (v, now["card_hashes"].get(k)) for k, v in before["card_hashes"].items() if now["card_hashes"].get(k) != v}
    assert not changed, f"card hashes changed: {changed}"
    pixels, golden = module.golden_pixels(tmp_path), load_file(str(GOLDEN / "mtt_pixels.safetensors"))["images"]
    assert pixels.shape == golden.shape
    diff = (pixels - golden).abs()
    # benchmarks/probe_golden_noise.py: float noise (1 against 2 threads) max 3.6e-4, mean 1.5e-6; lr_img 1 % off
    # max 1.3e-2, mean 1.6e-3
    assert diff.max() <= 4e-3 and diff.mean() <= 2e-5, f"MTT's pixels moved: max {diff.max():.3g}, mean {diff.mean():.3g}"


def _portable(row: dict) -> dict:
    """The row as any x86 CPU reproduces it. MTT's pixels come out of thousands of unrolled float operations whose
    last bits follow the CPU's kernels (an AVX-512 EPYC gave another set id than the machine that wrote the golden
    file, with the same accuracy and the same learned step size to all 16 digits), so its set id is left out and its
    pixels are compared within float noise instead; every other field, and every other method's set id, must match
    exactly."""
    return {k: v for k, v in row.items() if not (k == "set_id" and row.get("method") == "mtt")}  # its pixels: above
