"""Calibrate `--plan`'s CPU constants from measured rows: each evaluated network's wall time is fitted as
    seconds = fwd × (trained images × K + tested images) / R
(fwd: the arch's forward FLOPs per image; trained / tested: the kind's `work`) by non-negative least squares, giving
the effective forward rate R and the cost K of one trained image in forward passes; then each card's measured mean
against the fitted and the current estimate.

    python benchmarks/calibrate_plan.py --results leaderboard --results OTHER_STORE --data-root ../shared/data

ddbench.engine.cost.ASSUMED_FLOPS_PER_S["cpu"] and EVAL_TRAIN_FACTOR["cpu"] are set from its output (RESULTS.md); the
"current estimate" column adds STEP_SECONDS["cpu"] per optimizer step, as `--plan` does.
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
    per_card = [[statistics.median(v[i] for v in samples if v[0] == c) for i in (1, 2, 3)] for c in fitted_on]
    x = np.array([[a, b] for a, b, _ in per_card])
    y = np.array([s for *_, s in per_card])
    scale = x.mean(axis=0)
    (a, b), _ = nnls(x / scale, y)
    a, b = a / scale[0], b / scale[1]
    rate, factor = 1 / b, a / b
    print(f"fit over {len(fitted_on)} card(s): R = {rate / 1e12:.3f} TFLOP/s, K = {factor:.1f} forward passes per trained image "
          f"(now assumed: {ASSUMED_FLOPS_PER_S['cpu'] / 1e12:.3f}, {EVAL_TRAIN_FACTOR['cpu']:g})")
    print("\n| card | networks | measured s / network (median) | fitted | current estimate |\n|---|---|---|---|---|")
    for card in cards:
        rows = [(t, s, w) for c, t, s, w in samples if c == card]
        measured = statistics.median(w for *_, w in rows)
        fitted = statistics.mean(t * factor / rate + s / rate for t, s, _ in rows)
        current = statistics.mean((t * EVAL_TRAIN_FACTOR["cpu"] + s) / ASSUMED_FLOPS_PER_S["cpu"] + steps[card] * STEP_SECONDS["cpu"]
                                  for t, s, _ in rows)
        print(f"| {card} | {len(rows)} | {measured:.1f} | {fitted:.1f} | {current:.1f} |")


if __name__ == "__main__":
    main()
