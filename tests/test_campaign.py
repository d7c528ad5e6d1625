"""The GPU campaign: rehearsed offline on the CPU (a bare venv, carried wheels, each call's dry run), and its device
branch checked command by command with stand-ins for ddbench and python (no GPU here), so the lent machine never
finds a broken script."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CALL_STEPS = {
    1: ["environment", "smoke_random", "smoke_vmap", "smoke_herding", "smoke_mtt", "smoke_dd", "smoke_mkdt", "bench_evaluate",
        "bench_mtt", "bench_experts", "bench_precision"],
    2: ["environment", "mtt_experts_start", "mtt_start_evaluate", "mtt_distill", "mtt_evaluate"],
    3: ["environment", "xarch_random", "xarch_mtt"],
    4: ["environment", "tracks"],
}


def test_the_device_rehearsal_passes_offline(tmp_path):
    """benchmarks/rehearse_device.sh: offline install into a venv without ddbench's packages, kornia's step skipped
    with its reason, every other step of the three calls passing, one archive per call."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # its `python` is this one's
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "rehearse_device.sh"), str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=1200, cwd=REPO, env={**os.environ, "PATH": path})
    print(done.stdout[-3000:])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    for call, steps in CALL_STEPS.items():
        summary = (tmp_path / "work" / f"call{call}" / "SUMMARY.txt").read_text()
        assert re.findall(r"^\d\d (\S+)", summary, re.M) == ["install", *steps], summary
    log = next((tmp_path / "work" / "call1").glob("*-bench_precision.log")).read_text()
    assert "fp32/bf16" in log and "digits-quick" in log
    install = next((tmp_path / "work" / "call1").glob("*-install.log")).read_text()
    assert "timm: installed from timm-" in install and "kornia (optional): absent" in install
    assert "art: installed from adversarial_robustness_toolbox-" in install  # the adversarial cards' library, carried
    tracks = next((tmp_path / "work" / "call4").glob("*-tracks.log")).read_text()
    assert "0 step(s) failed" in tracks and "tracks: 6 rows in the store" in (tmp_path / "work" / "call4" / "SUMMARY.txt").read_text()


_STAND_IN = """#!/usr/bin/env bash
printf '%s\\n' "$(basename "$0") $*" >> "$CALLS"
case "$*" in *"import kornia"*) exit "${KORNIA_RC:-0}";; esac
exit 0
"""


def _device_branch(tmp_path: Path, call: int, data_root: str = "/data/root", **env: str) -> tuple[str, list[str]]:
    """Run CALL's device branch with ddbench and python replaced by stand-ins that log their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("ddbench", "python"):
        (bin_dir / name).write_text(_STAND_IN)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / f"calls{call}.txt"
    run_env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
               "DDBENCH_CACHE": str(tmp_path / "cache"), "DEVICE_WHEELS": str(tmp_path / "no-wheels"), **env}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_campaign.sh"), str(call), str(tmp_path / f"out{call}"),
                           data_root], env=run_env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return (tmp_path / f"out{call}" / "SUMMARY.txt").read_text(), calls.read_text().splitlines()


def test_the_device_branch_sends_every_step_to_cuda_with_the_data_and_its_budget(tmp_path):
    summary1, calls1 = _device_branch(tmp_path, 1)
    commands = [c for c in calls1 if not c.startswith("python -c")]
    ddbench_runs = [shlex.split(c) for c in commands if c.startswith("ddbench ")]
    assert len(ddbench_runs) == 6 and all(a[a.index("--device") + 1] == "cuda" for a in ddbench_runs)
    benches = [c for c in commands if "bench_" in c]
    assert len(benches) == 4 and all("--device cuda" in c for c in benches)
    assert all("--data-root /data/root" in c for c in benches if "bench_mtt" not in c)
    assert "--ipc 10 50" in next(c for c in benches if "bench_evaluate" in c)
    assert "skipped" not in summary1 and "budget=420s" in summary1

    summary2, calls2 = _device_branch(tmp_path, 2)
    distill = shlex.split([c for c in calls2 if c.startswith("ddbench distill")][-1])
    cfg = dict(distill[i + 1].split("=") for i, a in enumerate(distill) if a == "--cfg")
    assert cfg == {"num_experts": "4", "expert_train_epochs": "22", "iterations": "900", "zca": "false", "lr_img": "1000",
                   "lr_lr": "1e-5", "lr_teacher": "0.01", "syn_steps": "30", "expert_epochs": "2", "max_start_epoch": "20"}
    assert distill[distill.index("--protocol") + 1] == "cifar10-ipc10"
    experts = shlex.split([c for c in calls2 if c.startswith("ddbench distill")][0])  # same budget, 1 iteration, step 0 kept
    experts_cfg = dict(experts[i + 1].split("=") for i, a in enumerate(experts) if a == "--cfg")  # the last value wins
    assert experts_cfg == {**cfg, "iterations": "1"}  # the same experts (their key ignores iterations) and start images
    assert experts[experts.index("--snapshots") + 1] == "0"
    start = next(c for c in calls2 if "--claim mtt-start" in c)
    assert "mtt-start-step0.safetensors" in start and "--data-root /data/root" in start
    assert str(tmp_path / "cache") in start  # the sets stay in the cache, outside what comes back
    assert (tmp_path / "out2" / "campaign-call2.tar.gz").is_file() and "budget=580s" in summary2


def test_the_tracks_call_sweeps_the_carried_datasets_on_cuda_cheapest_first(tmp_path):
    """Call 4 runs issue 23's sweep on the datasets whose files were carried (here the two MNISTs, not CIFAR-10), every
    evaluation on CUDA with the data root, MTT at the leaderboard's reduced budget, in a store kept in the cache."""
    data = tmp_path / "carried"
    data.mkdir()
    for name in ("mnist.npz", "fashion_mnist.npz"):
        (data / name).write_bytes(b"")
    summary, calls = _device_branch(tmp_path, 4, data_root=str(data))
    runs = [shlex.split(c) for c in calls if c.startswith("ddbench evaluate")]
    assert len(runs) == 6 and "budget=540s" in summary and "rc=0" in summary
    assert all(a[a.index("--device") + 1] == "cuda" and a[a.index("--data-root") + 1] == str(data) for a in runs)
    assert all(a[a.index("--results") + 1] == str(tmp_path / "cache" / "tracks-results") for a in runs)
    cards = [a[a.index("--protocol") + 1: a.index("--data-root")] for a in runs]
    assert {c.split("-")[0] for step in cards for c in step} == {"mnist", "fashion_mnist"}
    assert [a[a.index("--method") + 1] for a in runs] == ["random", "herding", "random,herding", "random,herding", "mtt", "mtt"]
    assert cards[0] == ["mnist-ipc1-adv", "mnist-ipc1-privacy", "fashion_mnist-ipc1-adv", "fashion_mnist-ipc1-privacy"]
    for a in runs[4:]:
        cfg = dict(a[i + 1].split("=") for i, x in enumerate(a) if x == "--cfg")
        assert cfg == {"mtt.num_experts": "4", "mtt.expert_train_epochs": "22", "mtt.iterations": "300"}


def test_steps_that_do_not_fit_the_budget_are_skipped_and_said(tmp_path):
    summary, calls = _device_branch(tmp_path, 1, CALL_SECONDS="10", KORNIA_RC="1")
    assert re.search(r"^\d\d smoke_random\s+skipped for time", summary, re.M), summary
    assert not [c for c in calls if c.startswith("ddbench ")]


def test_a_missing_optional_package_skips_its_step_with_a_reason(tmp_path):
    summary, calls = _device_branch(tmp_path, 1, KORNIA_RC="1")
    assert re.search(r"^\d\d smoke_mkdt\s+skipped: needs kornia, not installed here", summary, re.M), summary
    assert not [c for c in calls if "--method mkdt" in c]
