"""What every result row records about the code and the machine that produced it."""
from __future__ import annotations

import functools
import resource
import subprocess
from pathlib import Path

import torch

from ddbench import __version__
from ddbench.core.errors import DDBenchError


@functools.lru_cache(maxsize=1)
def git_sha() -> str:
    """The commit of the ddbench source tree (with '-dirty' for local changes), or 'unknown'."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip()[:12] + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def code_version() -> str:
    return f"{__version__}+{git_sha()}"


def peak_memory_mb(device: torch.device) -> tuple[float, str]:
    """The device's peak memory so far in MB and what it measures: the CUDA allocator's peak (reset per stage), or on
    a CPU the process's peak resident set size (never reset: a lifetime maximum)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_max_rss"


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def pick_device(requested: str | None = None, here: bool = True) -> torch.device:
    """`--device` if given, else CUDA when available, else CPU. `here=False`: the device is used elsewhere (Ray
    workers, or only costed by a plan), so this machine need not have it."""
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise DDBenchError(f"unknown device '{requested}'; use cpu, cuda or cuda:N") from None
        if device.type not in ("cpu", "cuda"):
            raise DDBenchError(f"device '{requested}' is not supported; ddbench runs on cpu, cuda or cuda:N")
        if not here:
            return device
        if device.type == "cuda" and not torch.cuda.is_available():
            raise DDBenchError(f"device '{requested}' requested but CUDA is not available here")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise DDBenchError(f"device '{requested}' does not exist; this machine has {torch.cuda.device_count()} CUDA device(s)")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
