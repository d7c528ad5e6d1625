"""Publishing is deliberate and a published row can be trusted: the default store, quick cards,
escaping, external sets, merging stores, re-running a row."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ddbench.cli import main
from ddbench.kinds import load_protocol
from ddbench.publish.leaderboard import render
from ddbench.store.results import REQUIRED_FIELDS, ResultStore

REPO = Path(__file__).resolve().parents[1]
IPC1 = str(Path(__file__).parent / "cards" / "digits-ipc1.toml")


def test_the_readme_first_command_never_writes_into_the_checkout(tmp_path):
    """`ddbench evaluate --method random` inside the checkout: rows go to the per-user store."""
    committed = (REPO / "leaderboard" / "results.jsonl").read_bytes()
    env = {k: v for k, v in os.environ.items() if k != "DDBENCH_RESULTS"}
    env.update(XDG_DATA_HOME=str(tmp_path / "xdg"), DDBENCH_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "ddbench", "evaluate", "--method", "random", "--epochs", "1", "--seeds", "1",
                           "--no-progress"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (REPO / "leaderboard" / "results.jsonl").read_bytes() == committed
    assert len(ResultStore(tmp_path / "xdg" / "ddbench" / "results").rows()) == 1


def _row(method, seed, acc, protocol="mnist-ipc10", **kw):
    card = load_protocol(protocol)
    row = {k: "x" for k in REQUIRED_FIELDS}
    row.update(method=method, run_id=f"cfg-{method}", protocol=protocol, protocol_hash=card.hash, arch="convnet",
               seed=seed, accuracy=acc, protocol_standard=True, device="cpu", set_id="s", data_fingerprint="f")
    row.update(kw)
    return row


def test_quick_cards_are_never_published(tmp_path):
    store = ResultStore(tmp_path)
    store.append([_row("random", 0, 95.0, protocol="digits-quick"), _row("random", 0, 94.0)])
    text = render(store)
    assert "## mnist-ipc10" in text and "digits-quick" not in text


def test_names_are_escaped_and_external_sets_are_marked(tmp_path):
    store = ResultStore(tmp_path)
    evil = "mtt | 99.9 ± 0.0 |\n## injected heading <b>"
    store.append([_row(evil, 0, 50.0, run_id="set-abc", external=True), _row("mtt", 0, 60.0, run_id="set-def", external=True)])
    text = render(store)
    assert "\n## injected" not in text and "<b>" not in text
    table = text.split("## mnist-ipc10")[1]
    data_rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(data_rows) == 2 and all(line.count(" | ") == data_rows[0].count(" | ") for line in data_rows)
    assert "mtt (external)" in table and "\\|" in table  # a set calling itself mtt is not ranked as MTT


def test_merging_stores_gives_each_row_once_and_reports_conflicts(tmp_path, capsys):
    a, b, into = ResultStore(tmp_path / "a"), ResultStore(tmp_path / "b"), tmp_path / "merged"
    a.append([_row("random", 0, 94.0), _row("random", 1, 95.0)])
    b.append([_row("random", 1, 95.0), _row("random", 2, 93.0), _row("random", 0, 91.0)])  # seed 0 disagrees
    assert main(["results", "merge", str(a.directory), str(b.directory), "--into", str(into)]) == 0
    out, err = capsys.readouterr()
    rows = ResultStore(into).rows()
    assert sorted((r["seed"], r["accuracy"]) for r in rows) == [(0, 94.0), (1, 95.0), (2, 93.0)]
    conflicts = [line for line in err.splitlines() if "conflict" in line]
    assert len(conflicts) == 1 and "seed 0" in conflicts[0] and "94.0" in conflicts[0] and "91.0" in conflicts[0]
    assert "3 new row(s), 1 conflict(s)" in out
    assert main(["results", "merge", str(a.directory), "--into", str(into)]) == 0  # idempotent
    assert len(ResultStore(into).rows()) == 3


def test_verify_reproduces_a_digits_row_bitwise(tmp_path, capsys):
    lb = tmp_path / "lb"
    assert main(["evaluate", "--method", "random", "--protocol", "digits-quick", "--seeds", "1", "--batch-mode", "loop",
                 "--results", str(lb), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["verify", "--results", str(lb), "--protocol", "digits-quick", "--seed", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("reproduced (bitwise): digits-quick random") and "seed 0" in out
    rows = [json.loads(line) for line in (lb / "results.jsonl").read_text().splitlines()]
    rows[0]["accuracy"] += 1.0  # a tampered row
    (lb / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["verify", "--results", str(lb), "--protocol", "digits-quick", "--seed", "0", "--no-progress"]) == 1
    assert "NOT reproduced" in capsys.readouterr().out


def test_verify_is_bitwise_on_one_cpu_and_within_a_tolerance_on_a_gpu():
    from ddbench.sweep.verify import TOLERANCE, compare_accuracies

    cpu = {"device": "cpu (x86_64, 2 threads)", "torch_version": "2.14.1", "batch_mode": "loop", "accuracy": 90.0}
    assert compare_accuracies(cpu, {**cpu, "accuracy": 90.0}) == (True, True)
    assert compare_accuracies(cpu, {**cpu, "accuracy": 90.01}) == (True, False)  # one CPU: bitwise or not reproduced
    gpu = {**cpu, "device": "NVIDIA H100 80GB HBM3"}
    assert compare_accuracies(gpu, {**gpu, "accuracy": 90.0 + TOLERANCE / 2}) == (False, True)  # the same GPU: tolerance
    assert compare_accuracies(gpu, {**gpu, "accuracy": 90.0 + 2 * TOLERANCE}) == (False, False)


def test_the_per_network_clock_waits_for_the_gpu(monkeypatch):
    import torch

    from ddbench.kinds.supervised import _Clock

    synced = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    clock = _Clock("loop", 2, torch.device("cuda"))
    clock.lap()
    clock.restart()
    assert len(synced) == 3  # at start, before reading a lap, at restart
    _Clock("loop", 2, torch.device("cpu")).lap()
    assert len(synced) == 3  # never on a CPU
