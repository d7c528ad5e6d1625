"""Calibrate `--plan`'s CPU cost of an evaluation network from measured rows: each network's wall time is fitted as
    seconds = steps × S + fwd × (trained images × K + tested images) / R
(fwd: the arch's forward FLOPs per image; trained / tested: the kind's `work`; steps: its optimizer steps) for the
cost K of one trained image in forward passes, by non-negative least squares, with the rate R and the fixed step cost
S held at the values every other stage's estimate shares (ddbench.engine.cost.ASSUMED_FLOPS_PER_S["cpu"],
STEP_SECONDS["cpu"]); then each card's measured median against the fitted and the current estimate (both as `--plan`
prices a network).

    python benchmarks/calibrate_plan.py --results leaderboard --results OTHER_STORE --data-root ../shared/data \
        --measured cifar10-ipc10=168.46

ddbench.engine.cost.EVAL_TRAIN_FACTOR["cpu"] is set from its output (RESULTS.md).
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np
from scipy.optimize import nnls

from ddbench.data import load_dataset
from ddbench.engine.cost import ASSUMED_FLOPS_PER_S, EVAL_TRAIN_FACTOR, STEP_SECONDS, eval_steps, forward_flops
from ddbench.kinds import get_kind, load_protocol
from ddbench.store.results import ResultStore
from ddbench.store.rows import record_type


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", action="append", default=[], help="a result store (repeatable)")
    parser.add_argument("--measured", action="append", default=[], metavar="CARD=SECONDS",
                        help="a card's measured seconds per network on an idle host, e.g. from bench_precision.py (repeatable); "
                             "when given, only these points are fitted and the stores' rows are shown beside them")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    samples: list[tuple[str, float, float, float]] = []  # (card, fwd × trained, fwd × tested, seconds)
    steps: dict[str, float] = {}  # card -> optimizer steps per network (their fixed cost is not fitted here)
    datasets = {}
    for directory in args.results:
        for row in ResultStore(directory).rows():
            if record_type(row) != "accuracy" or not str(row.get("device", "")).startswith("cpu"):
                continue
            try:
                card = load_protocol(row["protocol"])
            except Exception:
                continue
            if card.kind != "supervised" or not isinstance(row.get("wall_time_s"), (int, float)) or row["wall_time_s"] <= 0:
                continue
            card = card.with_overrides(epochs=row.get("epochs", card.train.epochs))
            if card.dataset not in datasets:
                datasets[card.dataset] = load_dataset(card.dataset, args.data_root)
            train = datasets[card.dataset]
            fwd = forward_flops(row["arch"], train.num_classes, train.channels, *map(int, train.image_size))
            trained, tested = get_kind(card.kind).work(card, train)
            samples.append((row["protocol"], fwd * trained, fwd * tested, float(row["wall_time_s"])))
            steps[row["protocol"]] = eval_steps(card, trained)
    for item in args.measured:
        protocol, _, seconds = item.partition("=")
        card = load_protocol(protocol)
        if card.dataset not in datasets:
            datasets[card.dataset] = load_dataset(card.dataset, args.data_root)
        train = datasets[card.dataset]
        fwd = forward_flops(card.archs[0], train.num_classes, train.channels, *map(int, train.image_size))
        trained, tested = get_kind(card.kind).work(card, train)
        samples.append((f"{protocol} (measured)", fwd * trained, fwd * tested, float(seconds)))
        steps[f"{protocol} (measured)"] = eval_steps(card, trained)
    if not samples:
        raise SystemExit("no CPU rows of supervised cards with wall times in the given stores")
    cards = sorted({c for c, *_ in samples})
    fitted_on = [c for c in cards if c.endswith("(measured)")] or cards  # one point per card (its medians): busy-host outliers weigh little
    rate, step = ASSUMED_FLOPS_PER_S["cpu"], STEP_SECONDS["cpu"]
    per_card = [[statistics.median(v[i] for v in samples if v[0] == c) for i in (1, 2, 3)] for c in fitted_on]
    x = np.array([[trained / rate] for trained, _, _ in per_card])
    y = np.array([seconds - tested / rate - steps[c] * step for c, (_, tested, seconds) in zip(fitted_on, per_card)])
    (factor,), _ = nnls(x, y)
    print(f"fit over {len(fitted_on)} card(s) at R = {rate / 1e12:.2f} TFLOP/s and S = {step * 1e3:.1f} ms per step: "
          f"K = {factor:.1f} forward passes per trained image (now assumed: {EVAL_TRAIN_FACTOR['cpu']:g})")
    print("\n| card | networks | measured s / network (median) | fitted | current estimate |\n|---|---|---|---|---|")
    for card in cards:
        rows = [(t, s, w) for c, t, s, w in samples if c == card]
        measured = statistics.median(w for *_, w in rows)
        fitted, current = (statistics.mean((t * k + s) / rate + steps[card] * step for t, s, _ in rows)
                           for k in (factor, EVAL_TRAIN_FACTOR["cpu"]))
        print(f"| {card} | {len(rows)} | {measured:.1f} | {fitted:.1f} | {current:.1f} |")


if __name__ == "__main__":
    main()
