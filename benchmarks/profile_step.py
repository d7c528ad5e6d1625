"""Where a card's time goes: the engine's own loop under torch.profiler, and the test pass.

`ddbench.engine.train` marks each step's regions with `record_function` (data: the shuffle and the batch;
augment; forward with the loss; backward; optimizer). This script trains one network of a card's
recipe on a random-real set under the profiler and prints each region's share of the step; the
network's own forward and backward should be at least 85% of it (issue 12). A bare network step on
the same batch without augmentation, at the same precision and timed in the same run, is the
baseline the step is compared with. Last, it times the test pass (the card's one pass over the real
test split per network), gives its share of one network's full-card cost and the operators that
take most of it.

    python benchmarks/profile_step.py --data-root ../shared/data --card cifar10-ipc10 --epochs 30
    python benchmarks/profile_step.py --card digits-quick --epochs 100
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from tabulate import tabulate
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_loop import bare_step_seconds  # noqa: E402

from ddbench.data import load_dataset  # noqa: E402
from ddbench.engine.augment import DSA  # noqa: E402
from ddbench.engine.precision import precision_scope  # noqa: E402
from ddbench.engine.train import accuracy, init_network, train_networks  # noqa: E402
from ddbench.kinds import load_protocol  # noqa: E402
from ddbench.sweep.evaluate import card_space  # noqa: E402

REGIONS = ("ddbench.data", "ddbench.engine.augment", "ddbench.forward", "ddbench.backward", "ddbench.optimizer")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--card", default="cifar10-ipc10")
    ap.add_argument("--data-root")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = ap.parse_args()
    full_card = load_protocol(args.card)
    card = full_card.with_overrides(epochs=args.epochs)
    train = load_dataset(card.dataset, args.data_root)
    space = card_space(card, train)
    gen = torch.Generator().manual_seed(0)
    idx = torch.cat([train.indices_of_class(c)[torch.randperm(len(train.indices_of_class(c)), generator=gen)[: card.ipc]]
                     for c in range(train.num_classes)])
    x, y = space.from_uint8(train.x_train[idx]), train.y_train[idx]
    augment = DSA(card.train.dsa_strategy) if card.train.augment == "dsa" else None
    arch = card.archs[0]
    with precision_scope(args.precision, torch.device("cpu"), evaluation=True):
        train_networks(arch, [0], x, y, "hard", card.with_overrides(epochs=2).train, card.train.lr, train.num_classes,
                       augment, mode="loop", progress=False)  # warm-up
        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            train_networks(arch, [0], x, y, "hard", card.train, card.train.lr, train.num_classes, augment, mode="loop",
                           progress=False)
        profiled = time.perf_counter() - start
        totals = {e.key: e.cpu_time_total / 1e6 for e in prof.key_averages() if e.key in REGIONS}
        step = sum(totals.values())
        batches = -(-len(x) // card.train.batch_size)  # per epoch
        steps = (card.train.epochs + 1) * batches
        # the baseline: the bare network step (forward, loss, backward, SGD) on the same batch, no augmentation
        model = init_network(arch, 0, train.num_classes, train.channels, train.image_size)
        bare = bare_step_seconds(model, x[: card.train.batch_size], y[: card.train.batch_size], steps, card.train.lr,
                                 card.train.momentum)
        x_test, y_test = space.from_uint8(train.x_test), train.y_test
        accuracy(model, x_test[:1024], y_test[:1024])  # warm-up
        start = time.perf_counter()
        accuracy(model, x_test, y_test)
        test_pass = time.perf_counter() - start
        with profile(activities=[ProfilerActivity.CPU]) as test_prof:
            accuracy(model, x_test, y_test)
    print(f"{args.card} ({arch}, batch {min(len(x), card.train.batch_size)}, {steps} steps, {args.precision}, "
          f"{torch.get_num_threads()} threads); profiled run {profiled:.1f} s")
    rows = [[r.split(".")[1], f"{1e3 * totals.get(r, 0) / steps:.2f}", f"{100 * totals.get(r, 0) / step:.1f}%"] for r in REGIONS]
    print(tabulate(rows, headers=["region", "ms / step", "share"], tablefmt="github"))
    network = totals.get("ddbench.forward", 0) + totals.get("ddbench.backward", 0)
    print(f"network forward + backward: {100 * network / step:.1f}% of a step (target ≥ 85%); step {1e3 * step / steps:.2f} ms, "
          f"bare network step (no augmentation) {1e3 * bare:.2f} ms: ratio {step / steps / bare:.2f}")
    full = (full_card.train.epochs + 1) * batches * step / steps
    print(f"test pass ({len(x_test)} images): {test_pass:.2f} s = {100 * test_pass / (full + test_pass):.1f}% of one network's "
          f"full card ({full_card.train.epochs} epochs: {full:.0f} s of training at this step time)")
    ops = sorted(test_prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ops)
    print("test pass, the operators taking most of it (self CPU time):")
    print(tabulate([[e.key, f"{100 * e.self_cpu_time_total / total:.1f}%"] for e in ops[:6]], headers=["op", "share"],
                   tablefmt="github"))


if __name__ == "__main__":
    main()
