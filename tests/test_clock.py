"""The clock rows record: a stopped and continued process (Ctrl-Z, SIGSTOP) does not count the stop, and a call that
holds the GIL (work that starves the clock's ticker) is still counted, even when a SIGCONT reaches the running process
during it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

CHILD = """
import json, sys, time
from ddbench.core import clock
start, wall = clock.now(), time.perf_counter()
print("ready", flush=True)
if sys.argv[1] == "gil":
    json.dumps(list(range(10**7)))  # about 0.9 s in one C call (the encoder) that holds the GIL
    time.sleep(0.2)  # the ticker wakes and finds itself late
else:
    while time.perf_counter() - wall < 2.5:
        time.sleep(0.01)
print(json.dumps({"clock": clock.now() - start, "wall": time.perf_counter() - wall, "gaps": len(clock._gaps)}), flush=True)
"""


def _run(mode: str, stop_for: float = 0.0, continue_only: bool = False) -> dict:
    child = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        if stop_for:
            time.sleep(0.3)
            os.kill(child.pid, signal.SIGSTOP)
            time.sleep(stop_for)
            os.kill(child.pid, signal.SIGCONT)
        if continue_only:  # a SIGCONT to a process that was never stopped (`kill -CONT`, a shell's `bg` to a running job)
            time.sleep(0.3)
            os.kill(child.pid, signal.SIGCONT)
        out = json.loads(child.stdout.readline())
    finally:
        child.wait(timeout=60)
    return out


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="no job control signals on this platform")
def test_a_stopped_and_continued_process_does_not_count_the_stop():
    out = _run("sleep", stop_for=1.5)
    assert out["wall"] >= 2.5  # the 1.5 s stop fell inside the 2.5 s of wall time
    assert out["wall"] - out["clock"] == pytest.approx(1.5, abs=0.25), out  # the stop, and only the stop, left out


def test_a_call_that_holds_the_gil_is_work_not_a_pause():
    out = _run("gil")
    assert out["gaps"] >= 1, out  # the ticker did fall behind ...
    assert out["clock"] == pytest.approx(out["wall"], abs=0.02), out  # ... and nothing was subtracted: no SIGCONT came


@pytest.mark.skipif(not hasattr(signal, "SIGCONT"), reason="no job control signals on this platform")
def test_a_sigcont_to_a_running_process_during_such_a_call_subtracts_nothing():
    out = _run("gil", continue_only=True)
    assert out["gaps"] >= 1, out  # the ticker fell behind and a SIGCONT came with the gap ...
    assert out["clock"] == pytest.approx(out["wall"], abs=0.05), out  # ... but the process had CPU time all along
