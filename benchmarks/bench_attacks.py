"""Attack cost per network of the adversarial cards: FGSM, PGD and APGD-CE (ddbench.engine.attacks) on each card's
fixed subset of the test split, against an untrained ConvNet (the cost does not depend on the weights, but APGD stops
early on examples already misclassified, so on a trained network it costs more). Each card runs twice in the same
process: plain (the weights' gradients on, as ART alone computes them) and as ddbench runs it (weights frozen during
the attacks); prints seconds per attack, the ratio plain / ddbench, and whether the accuracies agree.

    python benchmarks/bench_attacks.py --data-root ../shared/data --cards mnist-ipc10-adv cifar10-ipc10-adv
"""
from __future__ import annotations

import argparse

import torch
from tabulate import tabulate

from ddbench.data import load_dataset
from ddbench.data.space import ImageSpace
from ddbench.engine.allocator import tune_cpu_allocator
from ddbench.engine.attacks import attack_accuracies, attacked_subset
from ddbench.kinds import load_protocol
from ddbench.models import create_network


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cards", nargs="+", default=["mnist-ipc10-adv", "cifar10-ipc10-adv"])
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    tune_cpu_allocator()  # as the CLI runs the attacks
    table = []
    for card_id in args.cards:
        card = load_protocol(card_id)
        train = load_dataset(card.dataset, args.data_root)
        model = create_network(card.archs[0], train.num_classes, train.channels, train.image_size).eval()
        picks = attacked_subset(len(train.x_test), card.params.attack.n_test)
        pixels, labels = train.x_test[picks].float() / 255, train.y_test[picks]
        space = ImageSpace(tuple(train.mean), tuple(train.std))
        plain, ours = (attack_accuracies(model, space, pixels, labels, card.params.attack, train.num_classes,
                                         torch.device("cpu"), freeze=freeze) for freeze in (False, True))
        for name in plain["seconds"]:
            a, b = plain["seconds"][name], ours["seconds"][name]
            table.append([card_id, name, f"{a:.1f}", f"{b:.1f}", f"{a / b:.2f}x" if b else "—",
                          f"{plain['accuracy'][name]} / {ours['accuracy'][name]}"])
        a, b = sum(plain["seconds"].values()), sum(ours["seconds"].values())
        table.append([card_id, "all", f"{a:.1f}", f"{b:.1f}", f"{a / b:.2f}x", ""])
    print(f"{len(picks)} attacked images per card, untrained {card.archs[0]}, {torch.get_num_threads()} thread(s); plain = "
          "weights' gradients on (ART's default), ddbench = weights frozen during the attacks")
    print(tabulate(table, headers=["card", "attack", "plain s", "ddbench s", "plain / ddbench", "accuracy % plain / ddbench"]))


if __name__ == "__main__":
    main()
