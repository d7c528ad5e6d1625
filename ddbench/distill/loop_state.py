"""The state a distillation's loop carries from one iteration (or epoch) to the next, and how it resumes.

An interrupted distillation goes on from its last saved iteration: the learned tensors (pixels, labels, step sizes),
their optimizers' state, the generators, the losses and counters so far are saved atomically, at most every
`RESUME_EVERY_S` seconds, to the context's resume file, so a resumed run ends with the set an uninterrupted one makes.
MTT and MKDT save per iteration, DD per epoch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ddbench.distill.method import DistillContext
from ddbench.engine.resume import Stateful, TensorState


@dataclass
class LoopState:
    """The learned tensors by name, their optimizers, the generators the loop draws from, the losses so far and any
    counters the loop keeps (DD: the networks drawn)."""

    learned: dict[str, torch.Tensor]
    optimizers: list[torch.optim.Optimizer]
    generators: list[torch.Generator]
    losses: list[float] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def _parts(self) -> dict[str, Stateful]:
        return {**{f"learned.{name}": TensorState(t) for name, t in self.learned.items()},
                **{f"optimizer.{i}": opt for i, opt in enumerate(self.optimizers)}}

    def resume(self, ctx: DistillContext) -> int:
        """Restore the state an interrupted run saved, if any; the iterations (epochs) already done (0: start afresh)."""
        if ctx.resume is None:
            return 0
        done, extra = ctx.resume.restore_parts(self._parts(), self.generators, ctx.device)
        if done:
            self.losses = [float(v) for v in extra["losses"]]
            self.counters = {name: int(v) for name, v in extra["counters"].items()}
        return done

    def save(self, ctx: DistillContext, done: int) -> None:
        """Save the state after `done` iterations (epochs), where a save is due."""
        if ctx.resume is not None:
            ctx.resume.save_parts_if_due(done, self._parts(), self.generators,
                                         losses=torch.tensor(self.losses, dtype=torch.float64), counters=dict(self.counters))
