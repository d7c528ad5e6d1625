"""Membership inference against networks trained on a set: the loss-threshold attack (Yeom et al. 2018) and its
difficulty-calibrated form (Watson et al. 2022; shadow networks trained on random real subsets of the same size, as
in the offline attacks of Carlini et al. 2022), scored by ROC AUC and the true-positive rate at 1 % and 0.1 %
false positives (Carlini et al. 2022's low-FPR reporting).

Scores are per example: higher means "member". Loss attack: −loss under the target network. Calibrated: the mean
loss of the shadows minus the target's loss (an example the target fits far better than networks that never saw it
is likely a member).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class MembershipRecipe:
    """A card's [membership] section."""

    n_population: int = 1000  # training images (members) and test images (non-members) of the population attack
    n_source_nonmembers: int = 1000  # training images not among the set's sources, for the source attack
    shadows: int = 4  # networks on random real subsets of the set's size, for the calibrated attack
    batch_size: int = 500


@torch.no_grad()
def example_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """Cross-entropy of every example under `model` (eval mode), on the CPU."""
    model.eval()
    return torch.cat([F.cross_entropy(model(x[i : i + batch]), y[i : i + batch], reduction="none").cpu()
                      for i in range(0, len(x), batch)])


def attack_metrics(member: torch.Tensor, nonmember: torch.Tensor) -> dict[str, float]:
    """AUC and TPR at 1 % / 0.1 % FPR of scores (higher = member)."""
    from sklearn.metrics import roc_auc_score, roc_curve  # scikit-learn loads only where an attack is scored
    scores = np.concatenate([member.numpy(), nonmember.numpy()]).astype(np.float64)
    truth = np.concatenate([np.ones(len(member)), np.zeros(len(nonmember))])
    fpr, tpr, _ = roc_curve(truth, scores)
    at = {f"tpr_at_{name}_fpr": float(tpr[fpr <= level].max()) for name, level in (("1pct", 0.01), ("0.1pct", 0.001))}
    return {"auc": round(float(roc_auc_score(truth, scores)), 6), **{k: round(v, 6) for k, v in at.items()},
            "n_members": len(member), "n_nonmembers": len(nonmember)}


def loss_attack(target_member: torch.Tensor, target_nonmember: torch.Tensor) -> dict[str, float]:
    return attack_metrics(-target_member, -target_nonmember)


def calibrated_attack(target_member: torch.Tensor, target_nonmember: torch.Tensor, shadow_member: torch.Tensor,
                      shadow_nonmember: torch.Tensor) -> dict[str, float]:
    """`shadow_*`: (shadows, N) losses of the shadow networks on the same examples."""
    return attack_metrics(shadow_member.mean(0) - target_member, shadow_nonmember.mean(0) - target_nonmember)


def fixed_sample(indices: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Up to `n` of `indices`, the same every time (a seeded permutation)."""
    return indices[torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))[: min(n, len(indices))]]
