"""The GPU campaign script runs end to end in its CPU dry-run mode (so the device session never
finds a broken script), and each of its steps succeeds."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS = ["smoke", "bench_evaluate", "bench_mtt", "bench_experts", "mtt_reduced", "mtt_reduced_start", "bench_precision",
         "xarch_random", "xarch_mtt_reduced"]


def test_gpu_campaign_dry_run_completes_every_step(tmp_path):
    env = {**os.environ, "DDBENCH_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_campaign.sh"), "--dry-run", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = (tmp_path / "out" / "SUMMARY.txt").read_text()
    print(summary)
    ran = re.findall(r"^\d\d (\S+)\s+rc=(\d+)", summary, re.M)
    assert [name for name, _ in ran] == STEPS
    failed = [(name, (tmp_path / "out").glob(f"*-{name}.log")) for name, rc in ran if rc != "0"]
    assert not failed, [(n, next(logs).read_text()[-1500:]) for n, logs in failed]
    precision_log = next((tmp_path / "out").glob("*-bench_precision.log")).read_text()
    assert "fp32/bf16" in precision_log and "digits-quick" in precision_log
