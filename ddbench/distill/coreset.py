"""Greedy coreset selection on feature vectors: herding and k-center."""
from __future__ import annotations

from typing import Callable

import torch


def select_per_class(labels: torch.Tensor, num_classes: int, select: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Concatenate, class by class, the indices `select(pool)` picks from that class's index pool."""
    picks = []
    for c in range(num_classes):
        pool = torch.nonzero(labels == c).flatten()
        picks.append(pool[select(pool).to(pool.device)].cpu())
    return torch.cat(picks)


def herding(features: torch.Tensor, budget: int) -> torch.Tensor:
    """Welling's herding: each step adds the point that brings the running mean closest to the full mean.

    Returns indices into `features` in selection order.
    """
    n = len(features)
    budget = min(budget, n)
    mu = features.mean(0)
    chosen: list[int] = []
    total = torch.zeros_like(mu)
    available = torch.ones(n, dtype=torch.bool, device=features.device)
    for k in range(budget):
        # candidate mean (total + x) / (k + 1) vs mu  <=>  distance of x to (k + 1) mu - total
        dist = torch.cdist(((k + 1) * mu - total).unsqueeze(0), features).squeeze(0)
        dist[~available] = float("inf")
        pick = int(torch.argmin(dist))
        chosen.append(pick)
        available[pick] = False
        total += features[pick]
    return torch.tensor(chosen, dtype=torch.long)


def k_center_greedy(features: torch.Tensor, budget: int, generator: torch.Generator) -> torch.Tensor:
    """Sener & Savarese's greedy k-center: a random first centre, then repeatedly the farthest point."""
    n = len(features)
    budget = min(budget, n)
    first = int(torch.randint(n, (1,), generator=generator))
    chosen = [first]
    min_dist = torch.cdist(features[first : first + 1], features).squeeze(0)
    for _ in range(budget - 1):
        min_dist[chosen] = -1.0
        pick = int(torch.argmax(min_dist))
        chosen.append(pick)
        min_dist = torch.minimum(min_dist, torch.cdist(features[pick : pick + 1], features).squeeze(0))
    return torch.tensor(chosen, dtype=torch.long)
