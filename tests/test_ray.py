"""The job graph on Ray: same rows as in-process, faults survived, two nodes without a shared cache,
bad addresses and a missing extra refused, and `--plan` counting the full CIFAR-10 MTT sweep.

The sweep: random, herding and MTT (2 experts) on the digits card, two archs, two or three seeds,
a 30-pass recipe. Every Ray run is a `ddbench` subprocess, as a user runs it.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ddbench.cli import main

try:
    import ray  # noqa: F401
except ImportError:  # CI installs the extra through .[test]: there, a missing Ray is a failure
    if os.environ.get("CI"):
        raise
    pytest.skip("Ray is not installed (pip install -e '.[ray]')", allow_module_level=True)

SWEEP = ["--method", "random,herding,mtt", "--protocol", "digits-quick", "--arch", "convnetd1,convnetd2",
         "--epochs", "30", "--cfg", "mtt.iterations=30", "--cfg", "mtt.num_experts=2", "--cfg", "mtt.expert_train_epochs=8",
         "--cfg", "herding.embed_epochs=3", "--batch-mode", "loop", "--no-progress"]
METHODS, ARCHS = 3, 2


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DDBENCH_CACHE": str(tmp / "cache"), "DDBENCH_RESULTS": str(tmp / "results"),
           "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0", **extra}
    env.pop("DDBENCH_DEBUG", None)
    return env


def _ddbench(args: list[str], env: dict[str, str], timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ddbench", "evaluate", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, **kw)


def _rows(store: Path) -> list[dict]:
    path = store / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _by_key(rows: list[dict]) -> dict[tuple, float]:
    keys = [(r["method"], r["arch"], r["seed"]) for r in rows]
    assert len(keys) == len(set(keys)), "a row was written twice"
    return {(r["method"], r["arch"], r["seed"]): r["accuracy"] for r in rows}


def _ray_stop() -> None:
    subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "stop", "--force"], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def ray_sweep(tmp_path_factory):
    """The sweep on a local Ray instance with 2 workers (1 thread each): (its folder, the result)."""
    tmp = tmp_path_factory.mktemp("ray-sweep")
    done = _ddbench([*SWEEP, "--seeds", "3", "--executor", "ray", "--workers", "2"], _env(tmp))
    return tmp, done


def test_ray_gives_the_rows_of_the_in_process_executor(ray_sweep, tmp_path):
    tmp, on_ray = ray_sweep
    assert on_ray.returncode == 0, on_ray.stderr[-2000:]
    local = _ddbench([*SWEEP, "--seeds", "3", "--threads-per-task", "1"], _env(tmp_path))
    assert local.returncode == 0, local.stderr[-2000:]
    ray_rows, local_rows = _rows(tmp / "results"), _rows(tmp_path / "results")
    assert len(ray_rows) == len(local_rows) == METHODS * ARCHS * 3
    print({k: v for k, v in sorted(_by_key(ray_rows).items())})
    assert _by_key(ray_rows) == _by_key(local_rows)  # accuracies equal to the last digit
    assert {r["set_id"] for r in ray_rows} == {r["set_id"] for r in local_rows}
    assert re.search(r"ray: 2 CPU\(s\) on 1 node\(s\); cache shared", on_ray.stderr)
    assert "0 failed" in on_ray.stderr and "0 failed" in local.stderr
    # one task per expert, per distillation and per evaluated seed; cached artefacts and sets are not redone
    assert "sweep: 26 task(s) done, 0 cached" in on_ray.stderr, on_ray.stderr[-1500:]
    again = _ddbench([*SWEEP, "--seeds", "3", "--executor", "ray", "--workers", "2"], _env(tmp))
    assert again.returncode == 0 and "sweep:" not in again.stderr  # nothing left to run: Ray is not even started
    assert len(_rows(tmp / "results")) == len(ray_rows)


def test_a_worker_killed_mid_task_is_retried_and_no_row_is_lost_or_doubled(tmp_path):
    env = _env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "ddbench", "evaluate", *SWEEP, "--seeds", "2", "--executor", "ray",
                             "--workers", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed: list[int] = []

    def kill_one_evaluation() -> None:  # SIGKILL the first worker seen running an evaluation
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and not killed:
            ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
            for line in ps.splitlines():
                if "ray::ddbench_evaluate" in line:
                    pid = int(line.split()[0])
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_evaluation)
    killer.start()
    out, err = proc.communicate(timeout=600)
    killer.join()
    assert killed, "no evaluation worker was seen running"
    assert proc.returncode == 0, err[-2000:]
    rows = _rows(tmp_path / "results")
    assert len(_by_key(rows)) == len(rows) == METHODS * ARCHS * 2
    assert "0 failed" in err


def test_a_killed_driver_resumes_with_no_duplicates(tmp_path):
    env = _env(tmp_path)
    args = [*SWEEP, "--seeds", "3", "--executor", "ray", "--workers", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "ddbench", "evaluate", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while len(_rows(tmp_path / "results")) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)  # the driver, mid-sweep
    proc.wait()
    os.killpg(proc.pid, signal.SIGKILL)  # the local Ray processes it started (what `ray stop` would do)
    before = len(_rows(tmp_path / "results"))
    assert 4 <= before < METHODS * ARCHS * 3
    again = _ddbench(args, env)
    assert again.returncode == 0, again.stderr[-2000:]
    rows = _rows(tmp_path / "results")
    assert len(_by_key(rows)) == len(rows) == METHODS * ARCHS * 3
    assert "cached" in again.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_without_a_shared_cache_send_every_artefact_to_the_driver(tmp_path):
    """A ZCA MTT sweep on two nodes with their own caches: the ZCA is fitted once and every expert trained once
    (one expert bank, under one key, on every machine), and no file crosses to a node twice."""
    port = _free_port()
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    node = {"DDBENCH_PRIVATE_CACHE": "1"}  # each node keeps its own cache, as on separate machines
    _ray_stop()
    try:
        head = subprocess.run([*ray_cli, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                               "--num-cpus", "1", "--include-dashboard=false", "--disable-usage-stats"],
                              env=_env(tmp_path / "head", **node), capture_output=True, text=True, timeout=180)
        assert head.returncode == 0, head.stderr[-1500:]
        second = subprocess.run([*ray_cli, "start", "--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1",
                                 "--num-cpus", "1", "--disable-usage-stats"],
                                env=_env(tmp_path / "node", **node), capture_output=True, text=True, timeout=180)
        assert second.returncode == 0, second.stderr[-1500:]
        done = _ddbench([*SWEEP, "--cfg", "mtt.zca=true", "--seeds", "2", "--executor", "ray", "--address",
                         f"127.0.0.1:{port}"], _env(tmp_path / "driver"))
    finally:
        _ray_stop()
    assert done.returncode == 0, done.stderr[-2000:]
    assert "on 2 node(s); cache copied to and from the workers" in done.stderr
    nodes = set(re.findall(r" on [^/\s]+/([0-9a-f]{8}) in ", done.stderr))
    assert len(nodes) == 2, done.stderr[-2000:]  # tasks ran on both nodes
    rows = _rows(tmp_path / "driver" / "results")
    assert len(_by_key(rows)) == len(rows) == METHODS * ARCHS * 2
    cache = tmp_path / "driver" / "cache"
    assert len(list((cache / "experts").glob("*/expert_*.safetensors"))) == 2
    assert len(list((cache / "networks").glob("*.safetensors"))) == 1  # herding's selection network
    assert len(list((cache / "sets").glob("*.safetensors"))) == 2 + 1 + 1  # random (one per seed), herding, mtt
    made_on_nodes = [p for n in ("head", "node") for p in (tmp_path / n / "cache").rglob("*.safetensors")]
    assert made_on_nodes  # the workers did use their own caches
    caches = [tmp_path / n / "cache" for n in ("driver", "head", "node")]
    assert len({bank.name for c in caches for bank in (c / "experts").glob("*")}) == 1  # one key everywhere: no retraining
    assert len(list((cache / "zca").glob("*.safetensors"))) == 1 and done.stderr.count("zca: ZCA of digits") == 1
    assert done.stderr.count("experts: expert 0 of 2") == 1 and done.stderr.count("experts: expert 1 of 2") == 1
    fetched = re.search(r"ray: (\d+) file\(s\) fetched by worker nodes \((\d+) distinct", done.stderr)
    assert fetched and int(fetched.group(1)) == int(fetched.group(2)) > 0, done.stderr[-2000:]  # none crossed twice


def test_an_unreachable_address_is_one_line_within_seconds(tmp_path, capsys):
    port = _free_port()  # nothing listens there
    start = time.perf_counter()
    code = main(["evaluate", "--method", "random", "--executor", "ray", "--address", f"127.0.0.1:{port}",
                 "--results", str(tmp_path / "lb"), "--no-progress"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ddbench:")]
    assert code == 2 and len(err) == 1 and f"127.0.0.1:{port}" in err[0], err
    print(f"refused in {time.perf_counter() - start:.1f} s")  # how fast: benchmarks/bench_refusals.py, not a test
    assert not (tmp_path / "lb").exists()


def test_ray_executor_without_the_extra_names_the_install_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    code = main(["evaluate", "--method", "random", "--executor", "ray", "--results", str(tmp_path / "lb"), "--no-progress"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ddbench:")]
    assert code == 2 and len(err) == 1 and "pip install -e '.[ray]'" in err[0], err


def test_plan_counts_the_full_cifar10_mtt_sweep(capsys, tmp_path, shared_data):
    from ddbench.cards.card import list_protocols
    from ddbench.distill.registry import create_method
    from ddbench.kinds import load_protocol

    mtt = create_method("mtt")
    cards = [load_protocol(c) for c in list_protocols("cifar10-ipc*") if "-" not in c[len("cifar10-"):]]  # not -xarch/-timm
    banks = {mtt.config_for(c)["zca"] for c in cards}  # ZCA or not: experts are trained in that space
    for executor, evaluations in (("local", len(cards)), ("ray", 5 * len(cards))):
        code = main(["evaluate", "--method", "mtt", "--protocol", *[c.id for c in cards], "--plan", "--executor", executor,
                     "--data-root", str(shared_data), "--device", "cpu", "--results", str(tmp_path / "lb")])
        out = capsys.readouterr().out
        assert code == 0, out
        print(out)
        cells = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| ")]
        counts = {c[0]: (int(c[1]), int(c[2]), float(c[4])) for c in cells if c[1].isdigit()}
        assert counts["experts"][:2] == (100 * len(banks), 0)
        assert counts["distill"][:2] == (len(cards), 0)
        assert counts["evaluate"][:2] == (evaluations, 0)
        assert all(hours > 0 for _, _, hours in counts.values())
        assert re.search(r"total: about [\d.]+ device-hours", out)
    assert not (tmp_path / "lb").exists()  # a plan writes nothing


def test_robustness_runs_as_tasks_on_ray_with_the_in_process_scores(tmp_path):
    """`ddbench robustness --executor ray`: the evaluations and the full-data network are tasks of one graph on
    Ray, and the scores equal the in-process ones."""
    def robustness(where: Path, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ddbench", "robustness", "--method", "herding", "--protocol",
                               "digits-quick", "--arch", "convnetd1", "--seeds", "2", "--epochs", "30", "--cfg",
                               "embed_epochs=3", "--batch-mode", "loop", "--no-progress", *extra],
                              env=_env(where), capture_output=True, text=True, timeout=600)

    on_ray = robustness(tmp_path / "ray", "--executor", "ray", "--workers", "2")
    assert on_ray.returncode == 0, on_ray.stderr[-2000:]
    assert re.search(r"ray: 2 CPU\(s\) on 1 node\(s\)", on_ray.stderr), on_ray.stderr[-1500:]  # it did run on Ray
    local = robustness(tmp_path / "local", "--threads-per-task", "1")
    assert local.returncode == 0, local.stderr[-2000:]

    def scores(where: Path) -> dict:
        return {(r["arch"], r["seed"]): r["scores"] for r in _rows(where / "results") if r.get("record") == "robustness"}

    assert len(scores(tmp_path / "ray")) == 2 and scores(tmp_path / "ray") == scores(tmp_path / "local")
