"""Example protocol kind (docs/extending.md): one row per seed whose "accuracy" is the share of the set's images
that its card's `min_brightness` calls bright. Shows a kind's own card section (`Params`), its checks and its rows.
One file; `@register_kind` is its one line of registration."""
from __future__ import annotations

from dataclasses import dataclass

from ddbench.kinds import ProtocolKind, make_row, register_kind


@dataclass(frozen=True)
class BrightParams:
    min_brightness: float  # a card of this kind must give it (top-level key)


@register_kind
class BrightImages(ProtocolKind):
    """Share of the set's images brighter than the card's `min_brightness` (in the set's space)."""

    name = "bright-images-example"
    Params = BrightParams

    def check_card(self, card, need):
        super().check_card(card, need)
        need(card.params.min_brightness > -10, f"min_brightness must be above -10, got {card.params.min_brightness}")

    def work(self, card, train):
        return 0.0, 0.0  # nothing is trained or tested

    def run(self, job, card, train, rt, base_row, emit):
        images = job.sets[0].images
        share = float((images.flatten(1).mean(1) > card.params.min_brightness).float().mean())
        emit([make_row(base_row, job.sets[0], rt.device, arch=job.arch, seed=s, accuracy=round(100 * share, 4), n_test=0,
                       label_mode=job.sets[0].label_mode, lr=None, learned_lr_used=False, batch_mode="none",
                       wall_time_s=0.0) for s in job.seeds])
