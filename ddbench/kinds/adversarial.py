"""`adversarial`: the supervised card's networks (same recipe, seeds and rows), then attacked on the test split.

Threat model: a white-box attacker who knows the trained network and perturbs each test image within an L∞ ball of
radius ε in [0, 1] pixel units (normalisation and ZCA are inside the attacked model). Each row keeps the clean
accuracy as `accuracy` and adds `adversarial`: clean, FGSM, PGD and APGD-CE accuracy on a fixed subset of the test
split, the attack library and version, the recipe and the seconds of the clean pass and of each attack
(ddbench.engine.attacks). BEARD's summary scores (RR, AE, CREI: ddbench.engine.beard) are derived from these when the
leaderboard is published.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ddbench.cards.card import ProtocolCard
from ddbench.data import ImageDataset
from ddbench.engine.attacks import AttackRecipe, art_version, attack_accuracies, attacked_subset
from ddbench.kinds.base import Need, Runtime, register_kind
from ddbench.kinds.supervised import Supervised, Trained
from ddbench.store.rows import Row

ADVERSARIAL_VERSION = 1


@dataclass(frozen=True)
class AdversarialParams:
    attack: AttackRecipe


@register_kind
class Adversarial(Supervised):
    """Supervised training, then FGSM, PGD and APGD-CE on a fixed subset of the test split."""

    name = "adversarial"
    Params = AdversarialParams

    def check_card(self, card: ProtocolCard, need: Need) -> None:
        super().check_card(card, need)
        a = card.params.attack
        need(0 < a.eps <= 1, f"attack.eps must be in (0, 1] (pixel units), got {a.eps}")
        need(1 <= a.pgd_steps <= 10_000 and 0 < a.pgd_step_size <= 1, "attack.pgd_steps must be 1..10000 and pgd_step_size in (0, 1]")
        need(0 <= a.apgd_steps <= 10_000, f"attack.apgd_steps must be 0..10000, got {a.apgd_steps}")
        need(a.n_test >= 1 and a.batch_size >= 1, "attack.n_test and attack.batch_size must be 1 or more")

    def run(self, job, card, train, rt, base_row, emit) -> None:
        art_version()  # the attack library is there before any network trains (one line naming the extra otherwise)
        super().run(job, card, train, rt, base_row, emit)

    def work(self, card: ProtocolCard, train: ImageDataset) -> tuple[float, float]:
        trained, tested = super().work(card, train)
        a = card.params.attack
        attacked = min(a.n_test, len(train.x_test)) * 3 * (1 + a.pgd_steps + a.apgd_steps)  # forward + backward per step
        return trained, tested + attacked

    def measure_seconds(self, row: Row) -> float:
        """The attacks' and the clean pass's recorded seconds."""
        seconds = (row.get("adversarial") or {}).get("seconds") or {}
        return float(sum(v for v in seconds.values() if isinstance(v, (int, float))))

    def measure(self, model: torch.nn.Module, net: Trained, card: ProtocolCard, train: ImageDataset,
                rt: Runtime) -> dict[str, Any]:
        row = super().measure(model, net, card, train, rt)
        picks = attacked_subset(len(train.x_test), card.params.attack.n_test)
        pixels = train.x_test[picks].float() / 255.0
        result = attack_accuracies(model, net.space, pixels, train.y_test[picks], card.params.attack, train.num_classes,
                                   rt.device, seed=net.seed)
        return {**row, "adversarial": {**result, "kind_version": ADVERSARIAL_VERSION}}
