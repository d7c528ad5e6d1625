"""The Ray driver's operator comfort, without starting a cluster where none is needed (issue 24): Ray's own
start-up output goes to a log file and the user gets one line; a missing token is named; stale markers and
.part files are removed; a long task prints heartbeats (this one starts a local Ray instance)."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

try:
    import ray
except ImportError:  # CI installs the extra through .[test]: there, a missing Ray is a failure
    if os.environ.get("CI"):
        raise
    pytest.skip("Ray is not installed (pip install -e '.[ray]')", allow_module_level=True)

from ddbench.core.errors import DDBenchError  # noqa: E402
from ddbench.store.results import REQUIRED_FIELDS, ResultStore  # noqa: E402
from ddbench.sweep import ray_executor  # noqa: E402
from ddbench.sweep.build import Sweep  # noqa: E402
from ddbench.sweep.graph import Graph, Task  # noqa: E402
from ddbench.sweep.options import EvalOptions  # noqa: E402


def test_a_failed_start_is_one_line_and_ray_output_goes_to_a_log_file(tmp_path, capfd, monkeypatch):
    def noisy_init(**kwargs):
        for i in range(20):
            print(f"ray internal line {i}", file=sys.stderr)
        os.write(2, b"raylet: a line written straight to file descriptor 2\n")
        raise RuntimeError("Failed to start the GCS server\nmore detail\nand more")

    monkeypatch.setattr(ray, "init", noisy_init)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    executor = ray_executor.RayExecutor()
    log_file = tmp_path / "ray" / "ray.log"
    with pytest.raises(DDBenchError) as err:
        executor._connect(log_file)
    out, errs = capfd.readouterr()
    assert "ray internal line" not in out + errs and "raylet" not in out + errs
    assert "ray internal line 19" in log_file.read_text() and "raylet" in log_file.read_text()
    message = str(err.value)
    assert "\n" not in message and "Failed to start the GCS server" in message and str(log_file) in message


def test_a_missing_token_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token
    line = ray_executor.explain_start_failure(ConnectionError("Failed to connect to GCS at 10.0.0.1:6379"), "10.0.0.1:6379",
                                              tmp_path / "ray.log")
    assert "authentication token" in line and "RAY_AUTH_TOKEN" in line and "10.0.0.1:6379" in line
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    plain = ray_executor.explain_start_failure(ConnectionError("Failed to connect to GCS"), "10.0.0.1:6379", Path("/r/ray.log"))
    assert "token" not in plain and "Failed to connect to GCS" in plain


def test_stale_markers_and_part_files_are_removed_and_fresh_ones_kept(tmp_path):
    old, fresh = time.time() - 2 * ray_executor.STALE_S, time.time()
    files = {"old_marker": tmp_path / ".ddbench-share-0123abcd", "old_part": tmp_path / "sets" / "x.safetensors.part",
             "fresh_marker": tmp_path / ".ddbench-share-4567cdef", "fresh_part": tmp_path / "experts" / "b" / "e.part",
             "data": tmp_path / "sets" / "kept.safetensors"}
    for name, path in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
        stamp = old if name.startswith("old") or name == "data" else fresh
        os.utime(path, (stamp, stamp))
    assert ray_executor.clean_stale(tmp_path) == 2
    assert {n for n, p in files.items() if p.exists()} == {"fresh_marker", "fresh_part", "data"}


@dataclass
class Sleep:
    seconds: float

    def run(self, ws, emit) -> None:
        time.sleep(self.seconds)
        row = {k: "x" for k in REQUIRED_FIELDS}
        row.update(run_id="sleep", protocol="p", protocol_hash="h", arch="a", seed=0, accuracy=50.0)
        emit([row])

    def outputs(self, cache_dir: Path) -> list[Path]:
        return []


@pytest.mark.ray
@pytest.mark.slow
def test_a_long_task_prints_heartbeats(tmp_path, monkeypatch, caplog):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    monkeypatch.setattr(ray_executor, "HEARTBEAT_S", 1.0)
    graph = Graph()
    graph.add(Task("rows:sleep", "evaluate", "a sleeping task", Sleep(3.5)))
    opts = EvalOptions(device=torch.device("cpu"), store=ResultStore(tmp_path / "lb"), progress=False, cache_dir=tmp_path / "c")
    with caplog.at_level("INFO"):
        summary = ray_executor.RayExecutor(workers=1).run(Sweep(graph, [], opts, {}))
    assert summary.done == 1 and summary.rows == 1
    beats = [r.message for r in caplog.records if "still running after" in r.message]
    assert len(beats) >= 2 and "a sleeping task" in beats[0], caplog.text


def test_the_device_is_decided_on_the_worker(monkeypatch):
    spec = ray_executor.WorkerSpec("cuda", "/c", "t", 1, "auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ray_executor._task_device(spec).type == "cuda"  # a GPU worker under a CPU-only head
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DDBenchError, match="sees no GPU"):
        ray_executor._task_device(spec)
    assert ray_executor._task_device(ray_executor.WorkerSpec("cpu", "/c", "t", 1, "auto")).type == "cpu"
