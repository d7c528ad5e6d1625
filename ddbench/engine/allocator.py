"""glibc's allocator, set for PyTorch's large CPU tensors: big blocks stay in the heap between training steps.

A ConvNet step at batch 256 allocates activations of 30-140 MB. glibc serves every block over its mmap threshold
(32 MB at most) with a fresh `mmap` and returns it with `munmap` when freed, so each step page-faults in, zeroes and
frees about a gigabyte: 39 % of a selection network's CPU time went to the kernel here (`perf`). With mmap off
(M_MMAP_MAX 0) and trimming only above TRIM_THRESHOLD, freed blocks are reused and a CPU training step runs about
1.5x faster on this machine (benchmarks/bench_allocator.py; RESULTS.md). The cost: the process keeps the heap it
grew until it exits, as a caching allocator does (peak memory of that step 1.3 -> 1.6 GB).

Only ddbench's own processes are set (the CLI, Ray workers), never a program that imports ddbench; on a libc other
than glibc nothing changes. DDBENCH_MALLOC=system leaves glibc's defaults.
"""
from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # mallopt parameters, glibc's malloc.h
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2**31 - 1  # return heap memory only when 2 GiB of it is free at the top (mallopt's int: its largest)

_done = False


def running_on_glibc() -> bool:
    """True in a process linked against glibc (asked of the C library itself, without reading a file)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):  # no confstr (Windows), or the name unknown off glibc (musl, macOS)
        return False


def tune_cpu_allocator() -> bool:
    """Keep large blocks in glibc's heap for this process (once); True where the allocator is now set so."""
    global _done
    if _done:
        return True
    if os.environ.get("DDBENCH_MALLOC", "").lower() == "system":
        return False
    if not running_on_glibc():
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    _done = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
