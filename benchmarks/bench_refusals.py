"""Refusal latency (issue 22): how long ten bad inputs take to be refused, each in a fresh `ddbench` process,
against two floors measured in the same run: `ddbench --help` (the CLI without torch) and `python -c "import torch"`
(what any refusal that must read a tensor file pays). Target: every refusal under 3 s of wall time on an idle machine.

    python benchmarks/bench_refusals.py            # 3 repeats, the median of each
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 3.0


def _inputs(tmp: Path) -> dict[str, list[str]]:
    card = (ROOT / "protocols" / "mnist-ipc10.toml").read_text()
    (tmp / "typo.toml").write_text(card.replace('archs = ["convnet"]', 'archs = ["convnett"]'))
    (tmp / "broken.toml").write_text(card + "\n[train\n")
    (tmp / "corrupt.pt").write_bytes(b"\x80\x04not a set" * 100)
    (tmp / "card_dir.toml").mkdir()
    ev = ["evaluate", "--results", str(tmp / "store")]
    return {
        "unknown method": [*ev, "--method", "randm"],
        "card with an arch typo": [*ev, "--method", "random", "--protocol", str(tmp / "typo.toml")],
        "card that is not TOML": [*ev, "--method", "random", "--protocol", str(tmp / "broken.toml")],
        "card that is a directory": [*ev, "--method", "random", "--protocol", str(tmp / "card_dir.toml")],
        "unknown protocol id": [*ev, "--method", "random", "--protocol", "cifar10-ipc11"],
        "--arch typo": [*ev, "--method", "random", "--protocol", "mnist-ipc10", "--arch", "convnett"],
        "--seeds 0": [*ev, "--method", "random", "--protocol", "mnist-ipc10", "--seeds", "0"],
        "unknown flag": [*ev, "--method", "random", "--protcol", "mnist-ipc10"],
        "missing set file": [*ev, "--distilled", str(tmp / "nope.pt"), "--protocol", "mnist-ipc10"],
        "corrupt set file": [*ev, "--distilled", str(tmp / "corrupt.pt"), "--protocol", "mnist-ipc10"],
    }


def _time(cmd: list[str], cwd: Path, repeats: int) -> tuple[float, int, str]:
    times, rc, last = [], 0, ""
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
        times.append(time.perf_counter() - start)
        rc, last = out.returncode, (out.stderr.strip().splitlines() or [""])[-1]
    return statistics.median(times), rc, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ddbench = shutil.which("ddbench") or sys.exit("ddbench is not on PATH (pip install -e .)")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        floor_cli, _, _ = _time([ddbench, "--help"], tmp, args.repeats)
        floor_torch, _, _ = _time([sys.executable, "-c", "import torch"], tmp, args.repeats)
        table, worst = [], 0.0
        for label, argv in _inputs(tmp).items():
            wall, rc, message = _time([ddbench, *argv], tmp, args.repeats)
            worst = max(worst, wall)
            table.append([label, f"{wall:.2f}", f"{wall / floor_torch:.2f}×", rc, message[:90]])
    print(f"floors: `ddbench --help` {floor_cli:.2f} s, `python -c 'import torch'` {floor_torch:.2f} s "
          f"(median of {args.repeats})")
    print(tabulate(table, headers=["bad input", "wall s", "÷ import torch", "exit", "last line"]))
    verdict = "meets" if worst < TARGET_S else "MISSES"
    print(f"slowest refusal {worst:.2f} s: {verdict} the {TARGET_S:.0f} s target")


if __name__ == "__main__":
    main()
