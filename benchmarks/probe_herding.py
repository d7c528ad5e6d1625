"""Herding's IPC 1 gap (DC's Table 1: MNIST 89.2 %, ours 79.2 %): does iCaRL's feature normalisation explain it?
Evaluates herding on the cached selection network's features as ddbench takes them and L2-normalised (as iCaRL's
herding, which DC cites, takes them), under a card, in the same run; rows and sets go to a scratch directory (the
selection network is read from, or trained into, the user cache), never the leaderboard.

    python benchmarks/probe_herding.py --card mnist-ipc1 --seeds 3 --data-root ../shared/data
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from tabulate import tabulate

from ddbench.core.paths import user_cache_root
from ddbench.distill.coreset import herding, select_per_class
from ddbench.distill.registry import create_method, register_method
from ddbench.distill.selection import class_embeddings
from ddbench.engine.allocator import tune_cpu_allocator
from ddbench.kinds import load_protocol
from ddbench.store.results import ResultStore
from ddbench.sweep.evaluate import EvalOptions, evaluate_method

Herding = type(create_method("herding"))


@register_method
class HerdingL2(Herding):
    """Herding on L2-normalised features (iCaRL's form); the same selection network."""

    name = "herding-l2-probe"

    def distill(self, train, ipc, ctx):
        features, labels = class_embeddings(train, ctx)
        features = F.normalize(features, dim=1)
        return ctx.subset_set(train, select_per_class(labels, train.num_classes, lambda pool: herding(features[pool], ipc)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--card", default="mnist-ipc1")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    tune_cpu_allocator()
    card = load_protocol(args.card)
    table = []
    with tempfile.TemporaryDirectory() as scratch:
        networks = user_cache_root() / "networks"
        networks.mkdir(parents=True, exist_ok=True)
        (Path(scratch) / "networks").symlink_to(networks)
        opts = EvalOptions(device=torch.device("cpu"), store=ResultStore(Path(scratch) / "rows"), data_root=args.data_root,
                           seeds=args.seeds, progress=False, cache_dir=Path(scratch))
        for name in ("herding", "herding-l2-probe"):
            acc = [r["accuracy"] for r in evaluate_method(create_method(name), card, opts)]
            table.append([name, " ".join(f"{a:.2f}" for a in acc), f"{statistics.mean(acc):.2f}",
                          f"{statistics.stdev(acc) if len(acc) > 1 else 0:.2f}"])
    print(f"{card.id}, {args.seeds} evaluation seeds, the cached selection network")
    print(tabulate(table, headers=["features", "accuracy % per seed", "mean", "std"]))


if __name__ == "__main__":
    main()
