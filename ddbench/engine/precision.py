"""Numeric precision as part of the protocol: the engine sets it for every run and records it.

A card names its policy (`precision`); the engine applies it around every distillation and every
evaluation, whether called from the command line or as a library, and each row records both the
policy and what was in effect on the device.

- ``fp32``: full float32 everywhere; on CUDA, TF32 is switched off for matmuls and convolutions.
- ``tf32``: float32 storage, TF32 tensor-core math for matmuls and convolutions on CUDA (on a CPU
  this is the same as fp32, and the detail says so).
- ``bf16``: evaluation networks train and are tested under bfloat16 autocast (forward pass and
  loss; weights, gradients' accumulation and the optimizer stay float32); augmentation runs in
  float32; distillation (experts, teachers, the method itself) stays at fp32. On CUDA the
  remaining float32 math is TF32 off, as for fp32.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any, Iterator

import torch

from ddbench.core.errors import DDBenchError

SUPPORTED = ("fp32", "tf32", "bf16")
_AUTOCAST: ContextVar[torch.dtype | None] = ContextVar("ddbench_autocast", default=None)


def describe(policy: str, device: torch.device) -> str:
    """What `policy` means on `device`, as recorded in each row."""
    if policy == "bf16":
        return f"{device.type}: bf16 autocast for evaluation training and test, float32 weights and optimizer"
    if device.type != "cuda":
        return f"{device.type}: float32 (no TF32 on this device)"
    math = "tf32" if policy == "tf32" else "fp32"
    return f"cuda: matmul {math}, conv {math}"


def flags() -> str:
    """The backend flags in force now, printed beside every benchmark timing."""
    return (f"matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32} cudnn.allow_tf32={torch.backends.cudnn.allow_tf32} "
            f"cudnn.benchmark={torch.backends.cudnn.benchmark} autocast={autocast_dtype()}")


def autocast_dtype() -> torch.dtype | None:
    """The dtype evaluations in scope autocast to (None at full precision)."""
    return _AUTOCAST.get()


def autocast(device: torch.device) -> Any:
    """The autocast an evaluation's forward pass runs under (a no-op unless a bf16 evaluation is in scope)."""
    dtype = autocast_dtype()
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextmanager
def precision_scope(policy: str, device: torch.device, evaluation: bool = False) -> Iterator[str]:
    """Apply `policy` for the duration of a distillation or (`evaluation`) an evaluation; yields its description."""
    if policy not in SUPPORTED:
        raise DDBenchError(f"precision '{policy}' is not supported; use one of {', '.join(SUPPORTED)}")
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    tf32 = policy == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # speed only: algorithm choice, never the precision
    token = _AUTOCAST.set(torch.bfloat16 if policy == "bf16" and evaluation else None)
    try:
        yield describe(policy, device)
    finally:
        _AUTOCAST.reset(token)
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = saved
