"""The state trajectory matching (MTT, MKDT) carries from one iteration to the next, and how it resumes.

An interrupted distillation goes on from its last saved iteration: the learned tensors (pixels, labels, step size),
their optimizers' momenta, the generators and the losses so far are saved atomically, at most every `RESUME_EVERY_S`
seconds, to the context's resume file, so a resumed run ends with the set an uninterrupted one makes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ddbench.distill.method import DistillContext
from ddbench.engine.resume import Stateful, TensorState


@dataclass
class MatchingState:
    """The learned tensors by name, their optimizers, the generators the iterations draw from, the losses so far."""

    learned: dict[str, torch.Tensor]
    optimizers: list[torch.optim.Optimizer]
    generators: list[torch.Generator]
    losses: list[float] = field(default_factory=list)

    def _parts(self) -> dict[str, Stateful]:
        return {**{f"learned.{name}": TensorState(t) for name, t in self.learned.items()},
                **{f"optimizer.{i}": opt for i, opt in enumerate(self.optimizers)}}

    def resume(self, ctx: DistillContext) -> int:
        """Restore the state an interrupted run saved, if any; the iterations already done (0: start afresh)."""
        if ctx.resume is None:
            return 0
        done, extra = ctx.resume.restore_parts(self._parts(), self.generators, ctx.device)
        if done:
            self.losses = [float(v) for v in extra["losses"]]
        return done

    def save(self, ctx: DistillContext, iterations_done: int) -> None:
        """Save the state after `iterations_done` iterations, where a save is due."""
        if ctx.resume is not None:
            ctx.resume.save_parts_if_due(iterations_done, self._parts(), self.generators,
                                         losses=torch.tensor(self.losses, dtype=torch.float64))
