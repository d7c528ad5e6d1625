"""Evaluation speed: ddbench's engine against a plain per-seed loop in the original DC/MTT style.

Both train fresh ConvNets on the same random-subset set (IPC 10 and 50) under the card's recipe,
with the same seeds, in one process, and test on the real test split. Prints accuracy and wall
time for each and the time ratio (plain / ours). Both run under one precision policy (`--precision`,
default the card's: fp32, TF32 off), applied by ddbench.engine.precision and printed beside the times;
one short untimed run of each goes first, so neither pays cuDNN's autotuning or the first CUDA calls.

    python benchmarks/bench_evaluate.py --data-root ../shared/data --dataset cifar10 --epochs 1000
    python benchmarks/bench_evaluate.py --dataset digits --epochs 300            # CPU-sized
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_loop import plain_evaluate  # noqa: E402

from ddbench.core.provenance import device_name, pick_device  # noqa: E402
from ddbench.data import load_dataset  # noqa: E402
from ddbench.engine.augment import DSA  # noqa: E402
from ddbench.engine.precision import SUPPORTED, flags, precision_scope  # noqa: E402
from ddbench.engine.train import accuracy, init_network, train_networks  # noqa: E402
from ddbench.kinds import load_protocol  # noqa: E402
from ddbench.sweep.evaluate import card_space  # noqa: E402

CARDS = {"cifar10": "cifar10-ipc{}", "mnist": "mnist-ipc{}", "digits": "digits-quick"}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _mean_std(accs: list[float]) -> str:
    return f"{100 * statistics.mean(accs):.2f} ± {100 * statistics.pstdev(accs):.2f}"


def bench(dataset: str, ipc: int, seeds: int, epochs: int, device: torch.device, data_root, modes,
          warmup_epochs: int = 2) -> list[list]:
    card = load_protocol(CARDS[dataset].format(ipc))
    train = load_dataset(dataset, data_root)
    space = card_space(card, train)
    gen = torch.Generator().manual_seed(0)
    idx = torch.cat([train.indices_of_class(c)[torch.randperm(len(train.indices_of_class(c)), generator=gen)[:ipc]]
                     for c in range(train.num_classes)])
    x, y = space.from_uint8(train.x_train[idx], device), train.y_train[idx].to(device)
    x_test, y_test = space.from_uint8(train.x_test, device), train.y_test.to(device)
    recipe = card.train.__class__(**{**card.train.__dict__, "epochs": epochs})
    arch = card.archs[0]
    rows = []
    warm = card.train.__class__(**{**card.train.__dict__, "epochs": warmup_epochs})
    plain_evaluate(init_network(arch, 0, train.num_classes, train.channels, train.image_size), x, y, x_test, y_test,
                   warmup_epochs, recipe.lr, recipe.dsa_strategy, device)
    for mode in modes:
        train_networks(arch, list(range(seeds)), x, y, "hard", warm, warm.lr, train.num_classes, DSA(warm.dsa_strategy),
                       mode=mode, progress=False)

    _sync(device)
    start = time.perf_counter()
    plain = [plain_evaluate(init_network(arch, s, train.num_classes, train.channels, train.image_size), x, y, x_test, y_test,
                            epochs, recipe.lr, recipe.dsa_strategy, device) for s in range(seeds)]
    _sync(device)
    plain_s = time.perf_counter() - start
    rows.append([dataset, ipc, "plain (DC/MTT style)", _mean_std(plain), f"{plain_s:.1f}", "1.00"])

    for mode in modes:
        _sync(device)
        start = time.perf_counter()
        result = train_networks(arch, list(range(seeds)), x, y, "hard", recipe, recipe.lr, train.num_classes,
                                DSA(recipe.dsa_strategy), mode=mode, progress=False)
        accs = [accuracy(m, x_test, y_test) for m in result.models]
        _sync(device)
        ours_s = time.perf_counter() - start
        rows.append([dataset, ipc, f"ddbench ({mode} → {result.mode})", _mean_std(accs), f"{ours_s:.1f}", f"{plain_s / ours_s:.2f}"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="cifar10", choices=sorted(CARDS))
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--ipc", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--device", default=None)
    ap.add_argument("--modes", nargs="+", default=["auto", "loop", "vmap"])
    ap.add_argument("--precision", choices=SUPPORTED, default="fp32", help="the policy both engines run under "
                    "(the cards' fp32: TF32 off; tf32 as the pre-card reference timings ran)")
    args = ap.parse_args()
    device = pick_device(args.device)
    ipcs = [10] if args.dataset == "digits" else args.ipc
    table = []
    with precision_scope(args.precision, device, evaluation=True) as described:
        for ipc in ipcs:
            table += bench(args.dataset, ipc, args.seeds, args.epochs, device, args.data_root, args.modes)
        in_force = flags()
    print(f"device: {device_name(device)}; torch {torch.__version__}; {args.seeds} seeds, {args.epochs} epochs")
    print(f"precision: {args.precision} ({described}; {in_force})")
    print(tabulate(table, headers=["dataset", "ipc", "engine", "accuracy (%)", "seconds", "speed-up"], tablefmt="github"))


if __name__ == "__main__":
    main()
