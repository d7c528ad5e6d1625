"""Wall time without the time the process was stopped: the seconds rows and sets record.

A run paused with Ctrl-Z (SIGTSTP) or SIGSTOP and continued later would otherwise record the pause as training time
(a sweep paused for 8 minutes recorded 684.6 s for a network that takes 202.4 s). A daemon thread ticks every
`TICK_S`; a tick that comes more than `PAUSE_MIN_S` late marks a gap, and a gap counts as a pause only when the
process was continued (SIGCONT) during it or just after, and only for the part of it the process spent without CPU
time (a stopped process gets none): so a thread starved by a long call that holds the GIL (work, not a pause) is
never subtracted, even where a SIGCONT reaches the running process during that call. Where no handler can be
installed (not the main thread, no SIGCONT on the platform) the clock is `time.perf_counter`.
"""
from __future__ import annotations

import os
import signal
import threading
import time

TICK_S = 0.05
PAUSE_MIN_S = 0.5  # a tick this late is a gap
CONFIRM_S = 60.0  # a SIGCONT handled this long after a gap's end still confirms it (the main thread was busy in C)

_lock = threading.Lock()
_state = {"last_tick": 0.0, "last_cpu": 0.0, "installed": False}
_gaps: list[tuple[float, float, float]] = []  # (start, end, the process's CPU seconds in between) of late ticks
_continued: list[float] = []  # when SIGCONT was handled


def _advance(now: float) -> None:
    """Move the last tick to `now`, marking a gap if it comes late (call with the lock held)."""
    cpu = time.process_time()
    if now - _state["last_tick"] > TICK_S + PAUSE_MIN_S:
        _gaps.append((_state["last_tick"], now, cpu - _state["last_cpu"]))
    _state["last_tick"], _state["last_cpu"] = now, cpu


def _tick() -> None:
    while True:
        time.sleep(TICK_S)
        now = time.perf_counter()
        with _lock:
            _advance(now)


def _on_continue(previous):
    def handler(signum, frame) -> None:
        now = time.perf_counter()
        with _lock:
            if _state["installed"]:  # (a forked child that has not read the clock has nothing to account)
                _continued.append(now)
                _advance(now)  # continued before the ticker woke: the gap is marked here
        if callable(previous):
            previous(signum, frame)
    handler._ddbench_previous = previous  # type: ignore[attr-defined]
    return handler


def _install() -> None:
    if _state["installed"] or not hasattr(signal, "SIGCONT") or threading.current_thread() is not threading.main_thread():
        return
    try:
        previous = signal.getsignal(signal.SIGCONT)
        previous = getattr(previous, "_ddbench_previous", previous)  # ours, inherited by a forked child: chain to what it chained
        signal.signal(signal.SIGCONT, _on_continue(previous))
    except (ValueError, OSError):  # not allowed here (an embedded interpreter): plain wall time
        return
    _state["installed"] = True
    _state["last_tick"], _state["last_cpu"] = time.perf_counter(), time.process_time()
    threading.Thread(target=_tick, name="ddbench-clock", daemon=True).start()


def _forget() -> None:
    """In a forked child the ticker thread does not exist: start afresh there (the handler is installed again)."""
    global _lock
    _lock = threading.Lock()
    _state.update(last_tick=0.0, last_cpu=0.0, installed=False)
    _gaps.clear()
    _continued.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)


def paused_seconds() -> float:
    """Seconds this process has spent stopped since the clock was first read: each confirmed gap less the CPU time
    the process had in it."""
    with _lock:
        return sum(max(0.0, end - start - cpu) for start, end, cpu in _gaps
                   if any(start <= c <= end + CONFIRM_S for c in _continued))


def now() -> float:
    """A wall clock (seconds, arbitrary origin) that stands still while the process is stopped; differences of two
    readings are the seconds the process ran between them."""
    _install()
    return time.perf_counter() - paused_seconds()
