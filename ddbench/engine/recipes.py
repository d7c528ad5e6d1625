"""The training recipes a card fixes: evaluation training, ssl pre-training and the linear probe."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainRecipe:
    """How a fresh network is trained on a distilled set (the DC/MTT `evaluate_synset` loop)."""

    epochs: int = 1000  # the loop runs epochs + 1 passes, as range(Epoch + 1) in the original
    batch_size: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay_factor: float = 0.1  # applied once, after pass epochs // 2 + 1, with fresh momentum
    use_learned_lr: bool = True  # a set's learned lr replaces `lr` where the set carries one
    augment: str = "dsa"  # "dsa" or "none"
    dsa_strategy: str = "color_crop_cutout_flip_scale_rotate"

    @property
    def decay_after(self) -> int:
        return self.epochs // 2 + 1


@dataclass(frozen=True)
class PretrainRecipe:
    """ssl-transfer: how an encoder is pre-trained on a set (MKDT's pretrain.py)."""

    epochs: int = 20
    batch_size: int = 256
    lr: float = 0.1  # used when the set carries no learned lr (real subsets)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    use_learned_lr: bool = True
    bt_epochs: int = 20  # images-only sets are pre-trained with Barlow Twins for this many epochs


@dataclass(frozen=True)
class ProbeRecipe:
    """ssl-transfer: the linear probe on frozen, flattened, standardised features."""

    fractions: tuple[float, ...] = (0.01, 0.05, 0.1, 0.5)
    l2: float = 1e-3
    max_iter: int = 500  # L-BFGS iterations (strong Wolfe line search), enough to converge
    downstream: tuple[str, ...] = ()
