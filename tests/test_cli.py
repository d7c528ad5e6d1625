"""The command line: every bad input ends in one line on stderr and exit code 2; the verbs work."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ddbench.cli import main

CARD = str(Path(__file__).parent / "cards" / "digits-ipc1.toml")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv: str, match: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("ddbench: error: ") and match in lines[-1], lines
    assert "Traceback" not in err and not any(line.startswith("ddbench: error") for line in lines[:-1])


@pytest.fixture
def fake_mnist_root(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mnist.npz", x_train=rng.integers(0, 256, (40, 28, 28, 1), dtype=np.uint8),
             y_train=np.arange(40) % 10, x_test=rng.integers(0, 256, (20, 28, 28, 1), dtype=np.uint8),
             y_test=np.arange(20) % 10, class_names=np.array([str(i) for i in range(10)]))
    return tmp_path


def test_bad_inputs_exit_2_with_one_line(capsys, tmp_path, fake_mnist_root):
    res = ["--results", str(tmp_path / "lb"), "--no-progress"]
    one_line_error(capsys, "evaluate", "--method", "nope", *res, match="unknown method 'nope'")
    one_line_error(capsys, "evaluate", "--method", "random", "--protocol", "cifar10-ipc7", *res, match="unknown protocol")
    one_line_error(capsys, "evaluate", "--method", "random", "--arch", "convnot", *res, match="unknown architecture")
    one_line_error(capsys, "evaluate", "--method", "random", "--protocol", "cifar100-ipc1", "--data-root", str(tmp_path / "empty"),
                   *res, match="ddbench data prepare cifar100")
    one_line_error(capsys, "evaluate", "--method", "random", "--cfg", "x", *res, match="KEY=VALUE")
    one_line_error(capsys, "evaluate", "--method", "random", "--cfg", "x=1", *res, match="has no option")
    one_line_error(capsys, "evaluate", "--method", "random", "--seeds", "0", *res, match="--seeds")
    one_line_error(capsys, "evaluate", "--method", "random", "--distilled", "x", *res, match="exactly one")
    one_line_error(capsys, "evaluate", "--method", "random", "--bogus", *res, match="unrecognized arguments")
    one_line_error(capsys, "frobnicate", match="invalid choice")
    one_line_error(capsys, "leaderboard", "--results", str(tmp_path / "none"), match="no result store")
    one_line_error(capsys, "data", "prepare", "imagenet", match="unknown dataset")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    one_line_error(capsys, "evaluate", "--distilled", str(corrupt), "--protocol", CARD, *res, match="not a readable")
    one_line_error(capsys, "evaluate", "--distilled", str(corrupt), *res, match="needs --protocol")
    if not __import__("torch").cuda.is_available():
        one_line_error(capsys, "evaluate", "--method", "random", "--device", "cuda", *res, match="CUDA is not available")
    # wrong shapes: an 8×8 digits set offered to the 28×28 MNIST card
    digits_set = tmp_path / "digits.safetensors"
    assert run(capsys, "distill", "--method", "random", "--protocol", CARD, "--out", str(digits_set), "--no-progress")[0] == 0
    one_line_error(capsys, "evaluate", "--distilled", str(digits_set), "--protocol", "mnist-ipc1",
                   "--data-root", str(fake_mnist_root), *res, match="1×8×8 (C×H×W) but card 'mnist-ipc1'")


def test_list_verbs(capsys):
    code, out, _ = run(capsys, "list", "methods")
    assert code == 0 and "herding" in out and "forgetting" in out
    assert max(len(line) for line in out.splitlines()) <= 120 and "lr_img" not in out  # the overview stays narrow
    code, out, _ = run(capsys, "list", "methods", "mtt")
    assert code == 0 and "lr_img" in out and "cifar10-ipc10: 1000" in out  # one method: its options, per card
    code, out, _ = run(capsys, "list", "protocols", "cifar10-*")
    assert code == 0 and "cifar10-ipc50" in out and "mnist" not in out
    code, out, _ = run(capsys, "list", "archs")
    assert code == 0 and "resnet18" in out and "convnetd4" in out
    code, out, _ = run(capsys, "list", "datasets")
    assert code == 0 and "digits" in out and "bundled" in out
    code, out, _ = run(capsys, "data", "list")
    assert code == 0 and "data root" in out


def test_a_run_records_the_code_version_of_its_start_not_of_an_edit_made_while_it_trains(monkeypatch):
    import subprocess as sp

    import ddbench.cli.evaluate as evaluate_command
    from ddbench.core import provenance

    tree = {"edited": False}

    def fake_git(cmd, **kwargs):
        out = " M clock.py\n" if cmd[1] == "status" and tree["edited"] else ("" if cmd[1] == "status" else "a" * 40)
        return sp.CompletedProcess(cmd, 0, stdout=out, stderr="")

    def training_run(args):  # the tree is edited mid-run; then the first row reads the version
        tree["edited"] = True
        recorded.append(provenance.code_version())
        return 0

    recorded: list[str] = []
    monkeypatch.setattr(provenance.subprocess, "run", fake_git)
    monkeypatch.setattr(evaluate_command, "run", training_run)
    provenance.git_sha.cache_clear()
    try:
        assert main(["evaluate", "--method", "random", "--protocol", "digits-ipc1"]) == 0
    finally:
        provenance.git_sha.cache_clear()
    assert recorded == [f"{provenance.__version__}+{'a' * 12}"]


def test_evaluate_prints_a_table_and_publishes(capsys, tmp_path):
    lb = str(tmp_path / "lb")
    code, out, err = run(capsys, "evaluate", "--method", "random", "--protocol", CARD, "--epochs", "20",
                         "--seeds", "2", "--results", lb, "--no-progress")
    assert code == 0 and "| digits-ipc1 | random" in out and "seed 1:" in err
    code, out, _ = run(capsys, "leaderboard", "--results", lb, "--print")
    assert code == 0 and "not shown" in out  # shortened recipe: kept off the leaderboard
    code, out, _ = run(capsys, "leaderboard", "--results", lb)
    assert code == 0 and (tmp_path / "lb" / "LEADERBOARD.md").is_file()


def _rows(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def test_interrupted_and_killed_runs_resume_without_loss_or_duplicates(tmp_path):
    store = tmp_path / "lb" / "results.jsonl"
    cmd = [sys.executable, "-m", "ddbench", "evaluate", "--method", "random", "--protocol", CARD, "--epochs", "300",
           "--seeds", "4", "--batch-mode", "loop", "--results", str(tmp_path / "lb"), "--no-progress"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def start_and_stop(sig: int, rows_before: int) -> subprocess.CompletedProcess:
        # A suite started in the background (`cmd &`) inherits an ignored SIGINT; give the child the default back.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 120
        while len(_rows(store)) <= rows_before and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    first = start_and_stop(signal.SIGINT, 0)
    assert first.returncode == 130, first.stderr
    assert first.stderr.strip().splitlines()[-1].startswith("ddbench: interrupted;")
    assert "Traceback" not in first.stderr
    saved = _rows(store)
    assert 1 <= len(saved) < 4
    second = start_and_stop(signal.SIGKILL, len(saved))
    assert second.returncode == -signal.SIGKILL
    after_kill = _rows(store)
    assert after_kill[: len(saved)] == saved and len(after_kill) < 4
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    final = _rows(store)
    assert final[: len(after_kill)] == after_kill and len(final) == 4
    import json

    assert sorted(json.loads(line)["seed"] for line in final) == [0, 1, 2, 3]


def _kill_once_cached(method: str, card: str, tmp_path: Path, pattern: str, count: int, settle: float) -> dict:
    """Run `ddbench distill` with an endless budget, SIGKILL it once `count` cache files match `pattern`
    (plus `settle` seconds), then rerun with a short budget; returns what the test needs to check."""
    cache, out = tmp_path / "cache", tmp_path / f"{method}.safetensors"
    cmd = [sys.executable, "-m", "ddbench", "distill", "--method", method, "--protocol", card, "--out", str(out),
           "--cfg", "iterations=100000", "--no-progress"]
    env = {**os.environ, "DDBENCH_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}

    def cached() -> list[Path]:
        return sorted(p for p in cache.glob(pattern) if not p.name.startswith("."))  # ".name.part" files are unfinished

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline, files = time.time() + 240, []
    while time.time() < deadline and proc.poll() is None and len(files) < count:
        files = cached()
        time.sleep(0.05)
    time.sleep(settle)
    proc.kill()
    proc.communicate(timeout=60)
    killed_before_the_set = not out.exists()
    stamps = {p: p.stat().st_mtime_ns for p in files}
    cmd[cmd.index("iterations=100000")] = "iterations=3"
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    return {"files": files, "stamps": stamps, "killed_before_the_set": killed_before_the_set, "done": done, "out": out,
            "after": {p: p.stat().st_mtime_ns for p in files}, "cached_after": cached()}


def test_a_kill_during_distillation_keeps_the_finished_experts(tmp_path):
    """SIGKILL while MTT distils (its experts already written): the rerun trains no expert again (the
    expert files are untouched) and writes the set."""
    from ddbench.store.distilled import DistilledSet

    card = str(Path(__file__).parent / "cards" / "digits-ipc1.toml")
    run = _kill_once_cached("mtt", card, tmp_path, "experts/*/*.safetensors", 5, settle=1.0)
    assert len(run["files"]) == 5 and run["killed_before_the_set"]
    assert run["done"].returncode == 0, run["done"].stderr
    assert run["after"] == run["stamps"] and run["cached_after"] == run["files"]  # reused, not trained again
    assert len(DistilledSet.load(run["out"]).images) == 10


def test_a_kill_after_the_teacher_keeps_it_and_the_rerun_trains_no_teacher(tmp_path):
    """SIGKILL once MKDT's teacher and its representations are cached (experts or distillation under way):
    the rerun reuses both files untouched and finishes the set."""
    run = _kill_once_cached("mkdt", "digits-ssl-quick", tmp_path, "teachers/*/*.safetensors", 2, settle=0.5)
    assert [p.name for p in run["files"]] == ["representations.safetensors", "teacher.safetensors"]
    assert run["killed_before_the_set"] and run["done"].returncode == 0, run["done"].stderr
    assert run["after"] == run["stamps"] and run["out"].is_file()


def test_every_command_and_option_has_help_and_names_get_suggestions(capsys):
    import argparse

    from ddbench.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = []
    for name, sub in commands.choices.items():
        assert sub.description, name  # a description line under `ddbench NAME --help`
        for action in sub._actions:
            nested = action.choices.values() if isinstance(action, argparse._SubParsersAction) else []
            for a in [action, *(b for s in nested for b in s._actions)]:
                if not a.help and not isinstance(a, argparse._HelpAction):
                    missing.append(f"{name} {a.option_strings or a.dest}")
    assert not missing, missing
    for argv, hint in ((["evaluate", "--method", "radnom"], "did you mean 'random'"),
                       (["evaluate", "--method", "random", "--protocol", "mnist-ipc01"], "did you mean 'mnist-ipc1'"),
                       (["data", "prepare", "fashon_mnist"], "did you mean 'fashion_mnist'")):
        assert main(argv) == 2
        assert hint in capsys.readouterr().err, argv


def test_list_methods_names_where_the_options_are_and_shows_them(capsys):
    assert main(["list", "methods"]) == 0
    assert "`ddbench list methods NAME` shows a method's options" in capsys.readouterr().out  # as the README says
    assert main(["list", "methods", "mtt"]) == 0
    out = capsys.readouterr().out
    assert "iterations" in out and "5000" in out and "cifar10-ipc10: 1000.0" in out


def test_results_are_printed_off_the_progress_bar(tmp_path, capsys):
    assert main(["evaluate", "--method", "random", "--epochs", "3", "--seeds", "2", "--batch-mode", "loop",
                 "--results", str(tmp_path)]) == 0
    import re

    lines = [line for line in capsys.readouterr().err.split("\n") if re.search(r"convnetd1 seed \d+: [\d.]+%", line)]
    assert len(lines) == 2 and all(line.split("\r")[-1].startswith("  digits-quick") for line in lines), lines


def test_html_without_matplotlib_writes_nothing(tmp_path, capsys, monkeypatch):
    import builtins

    from test_leaderboard import _row

    from ddbench.store.results import ResultStore

    ResultStore(tmp_path).append([_row("random", 0, 90.0)])
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert main(["leaderboard", "--results", str(tmp_path), "--html", str(tmp_path / "site")]) == 2
    assert "pip install 'ddbench[site]'" in capsys.readouterr().err
    assert not (tmp_path / "LEADERBOARD.md").exists() and not (tmp_path / "site").exists()
