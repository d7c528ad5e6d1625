"""Numeric precision as part of the protocol: the engine sets it for every run and records it.

A card names its policy (`precision`); the engine applies it around every distillation and every
evaluation, whether called from the command line or as a library, and each row records both the
policy and what was in effect on the device.

- ``fp32``: full float32 everywhere; on CUDA, TF32 is switched off for matmuls and convolutions.
- ``tf32``: float32 storage, TF32 tensor-core math for matmuls and convolutions on CUDA (on a CPU
  this is the same as fp32, and the detail says so).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from ddbench.errors import DDBenchError

SUPPORTED = ("fp32", "tf32")


def describe(policy: str, device: torch.device) -> str:
    """What `policy` means on `device`, as recorded in each row."""
    if device.type != "cuda":
        return f"{device.type}: float32 (no TF32 on this device)"
    math = "tf32" if policy == "tf32" else "fp32"
    return f"cuda: matmul {math}, conv {math}"


@contextmanager
def precision_scope(policy: str, device: torch.device) -> Iterator[str]:
    """Apply `policy` for the duration of a distillation or an evaluation; yields its description."""
    if policy not in SUPPORTED:
        raise DDBenchError(f"precision '{policy}' is not supported yet; use one of {', '.join(SUPPORTED)}")
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    tf32 = policy == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # speed only: algorithm choice, never the precision
    try:
        yield describe(policy, device)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = saved
