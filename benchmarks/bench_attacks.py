"""Attack cost per network of the adversarial cards: FGSM, PGD and APGD-CE (ddbench.engine.attacks) on each card's
fixed subset of the test split, against an untrained ConvNet (the cost does not depend on the weights, but APGD stops
early on examples already misclassified, so on a trained network it costs more). Prints seconds per attack.

    python benchmarks/bench_attacks.py --data-root ../shared/data --cards mnist-ipc10-adv cifar10-ipc10-adv
"""
from __future__ import annotations

import argparse
import time

import torch

from ddbench.data import load_dataset
from ddbench.data.space import ImageSpace
from ddbench.engine.attacks import attack_accuracies, attacked_subset
from ddbench.kinds import load_protocol
from ddbench.models import create_network


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cards", nargs="+", default=["mnist-ipc10-adv", "cifar10-ipc10-adv"])
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    for card_id in args.cards:
        card = load_protocol(card_id)
        train = load_dataset(card.dataset, args.data_root)
        model = create_network(card.archs[0], train.num_classes, train.channels, train.image_size).eval()
        picks = attacked_subset(len(train.x_test), card.params.attack.n_test)
        start = time.perf_counter()
        result = attack_accuracies(model, ImageSpace(tuple(train.mean), tuple(train.std)), train.x_test[picks].float() / 255,
                                   train.y_test[picks], card.params.attack, train.num_classes, torch.device("cpu"))
        print(f"{card_id}: {time.perf_counter() - start:.1f} s for {result['n_attacked']} images; {result['seconds']}")


if __name__ == "__main__":
    main()
