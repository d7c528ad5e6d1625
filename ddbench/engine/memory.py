"""How much memory a computation asks autograd to keep for its backward pass, on any device."""
from __future__ import annotations

from typing import Callable, TypeVar

import torch

T = TypeVar("T")


def saved_for_backward_bytes(fn: Callable[[], T]) -> tuple[T, int]:
    """Run `fn`; return its result and the bytes autograd saved for the backward pass.

    Every save is counted (a tensor saved by two nodes counts twice); a checkpointed region
    counts only what it keeps, its inputs. Device-independent, so CPU tests and GPU benchmarks
    compare unrolls the same way."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, total
