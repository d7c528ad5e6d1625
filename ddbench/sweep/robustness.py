"""Robustness scores as DD-Ranking defines them (NUS-HPC-AI-Lab/DD-Ranking, ddranking/metrics), computed honestly.

- Label-robust score: IOR = acc(set) − acc(random real subset, same IPC); HLR = acc(full real data) −
  acc(set with hard labels); LRS = N(λ·IOR − (1 − λ)·HLR).
- Augmentation-robust score: ARS = N(λ·(acc(set) − acc(random)) with the card's augmentation +
  (1 − λ)·(the same without augmentation)).
- N(x) = (eˣ − e⁻¹) / (e − e⁻¹) maps [−1, 1] onto [0, 1]; λ = 0.5.

Where DD-Ranking differs and ddbench does not follow: it feeds percentages into N (built for [−1, 1]),
takes the best test accuracy over epochs and searches the learning rate on the test set. Here accuracies
are fractions, every accuracy is the card recipe's final-epoch one with the card's (or the set's learned)
lr, seed s of the set is paired with seed s of the random subset (the random subset distilled with seed s,
its seed recorded), and the full-data accuracy comes from one network per (dataset, arch) trained on all
of the training set (DeepCore's recipe in ddbench.engine.realtrain: SGD 0.1, Nesterov, cosine, 40 epochs, no
augmentation), cached.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from ddbench.cards.card import ProtocolCard
from ddbench.data import ImageDataset, load_dataset
from ddbench.distill.method import Method
from ddbench.distill.registry import create_method
from ddbench.engine.realtrain import RealTrainRecipe, cached_real_network
from ddbench.engine.train import accuracy
from ddbench.store.distilled import DistilledSet
from ddbench.store.rows import ROBUST_TASK, ScoreRecord, build_score_record, row_key
from ddbench.sweep.evaluate import EvalOptions, card_space, distill_cached, evaluate_method, evaluate_set

LAMBDA = 0.5
FULL_DATA_RECIPE = RealTrainRecipe()


def normalise(x: float) -> float:
    """DD-Ranking's exponential map of [−1, 1] onto [0, 1]."""
    return (math.exp(x) - math.exp(-1)) / (math.exp(1) - math.exp(-1))


def label_robust_score(acc_set: float, acc_random: float, acc_full: float, acc_set_hard: float,
                       lam: float = LAMBDA) -> dict[str, float]:
    """Accuracies as fractions in [0, 1]."""
    _check_fractions(acc_set, acc_random, acc_full, acc_set_hard)
    ior, hlr = acc_set - acc_random, acc_full - acc_set_hard
    return {"ior": ior, "hlr": hlr, "lrs": normalise(lam * ior - (1 - lam) * hlr)}


def aug_robust_score(set_aug: float, random_aug: float, set_plain: float, random_plain: float,
                     lam: float = LAMBDA) -> dict[str, float]:
    _check_fractions(set_aug, random_aug, set_plain, random_plain)
    with_aug, without = set_aug - random_aug, set_plain - random_plain
    return {"gain_aug": with_aug, "gain_plain": without, "ars": normalise(lam * with_aug + (1 - lam) * without)}


def _check_fractions(*values: float) -> None:
    if not all(0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"accuracies must be fractions in [0, 1], got {values} (percentages?)")


def full_data_accuracy(card: ProtocolCard, arch: str, train: ImageDataset, opts: EvalOptions) -> float:
    """Test accuracy (fraction) of `arch` trained on the whole training set, one cached network per (dataset, arch)."""
    space = card_space(card, train)
    model = cached_real_network(arch, train, space, FULL_DATA_RECIPE, 0, opts.device, opts.cache_dir, progress=opts.progress)
    return accuracy(model, space.from_uint8(train.x_test, opts.device), train.y_test.to(opts.device))


def _by_seed(rows: list[dict[str, Any]], arch: str) -> dict[int, float]:
    return {r["seed"]: r["accuracy"] / 100.0 for r in rows if r["arch"] == arch and not r.get("task")}


def _hard(dset: DistilledSet) -> DistilledSet:
    if dset.label_mode == "hard":
        return dset
    return dataclasses.replace(dset, labels=dset.labels.argmax(1), label_mode="hard")


# What a robustness record copies from the accuracy row it scores: its key and provenance, not its accuracy fields.
RECORD_FROM_ROW = ("schema", "run_id", "protocol", "protocol_version", "protocol_hash", "protocol_standard", "protocol_overrides",
                   "precision", "dataset", "data_fingerprint", "data_complete", "ipc", "epochs", "method", "external",
                   "method_config", "set_id", "distill_seed", "snapshot_step", "arch", "seed", "ddbench_version", "git_sha",
                   "code_version", "torch_version", "device", "host")


def robustness_rows(subject: Method | DistilledSet, card: ProtocolCard, opts: EvalOptions) -> list[ScoreRecord]:
    """Robustness records (ddbench.store.rows.ScoreRecord, task "robust") for a method's sets or one set, per arch
    and seed, appended to the store; the accuracies they come from are evaluated (or found) as ordinary rows first."""
    train = load_dataset(card.dataset, opts.data_root)
    plain = card.with_overrides(augment="none")

    def evaluate(c: ProtocolCard, hard: bool = False) -> list[dict[str, Any]]:
        if isinstance(subject, DistilledSet):
            return evaluate_set(_hard(subject) if hard else subject, c, opts)
        if not hard:
            return evaluate_method(subject, c, opts)  # seed s evaluates the set distilled with seed s
        seeds = range(opts.seeds or c.seeds)
        return [row for s in seeds for row in evaluate_set(
            _hard(distill_cached(subject, card, train, s, opts)), c, dataclasses.replace(opts, only_seeds=(s,)))]

    random = create_method("random")
    random_rows = {True: evaluate_method(random, card, opts), False: evaluate_method(random, plain, opts)}
    set_rows = {True: evaluate(card), False: evaluate(plain)}
    soft = any(r.get("label_mode") not in ("hard", None) for r in set_rows[True])
    hard_rows = evaluate(card.with_overrides(labels="hard"), hard=True) if soft else set_rows[True]
    out = []
    for arch in dict.fromkeys(r["arch"] for r in set_rows[True]):
        full = full_data_accuracy(card, arch, train, opts)
        acc, rnd = _by_seed(set_rows[True], arch), _by_seed(random_rows[True], arch)
        acc_plain, rnd_plain, acc_hard = (_by_seed(rows, arch) for rows in (set_rows[False], random_rows[False], hard_rows))
        for seed in sorted(acc):
            template = next(r for r in set_rows[True] if r["arch"] == arch and r["seed"] == seed)
            scores = {**label_robust_score(acc[seed], rnd[seed], full, acc_hard[seed]),
                      **aug_robust_score(acc[seed], rnd[seed], acc_plain[seed], rnd_plain[seed])}
            random_row = next(r for r in random_rows[True] if r["arch"] == arch and r["seed"] == seed)
            inputs = {"accuracy": template["accuracy"], "random_set_id": random_row["set_id"],
                      "random_distill_seed": random_row["distill_seed"], "full_data_accuracy": round(full, 6),
                      "full_data_recipe": dataclasses.asdict(FULL_DATA_RECIPE), "lambda": LAMBDA}
            shared = {k: template[k] for k in RECORD_FROM_ROW if k in template}
            out.append(build_score_record(**shared, task=ROBUST_TASK, scores={k: round(v, 6) for k, v in scores.items()},
                                          inputs=inputs, timestamp=time.strftime("%Y-%m-%dT%H:%M:%S%z")))
    if opts.store is not None:
        have = opts.store.keys()
        opts.store.append([r for r in out if row_key(r) not in have])
    return out


__all__ = ["normalise", "label_robust_score", "aug_robust_score", "robustness_rows", "full_data_accuracy"]
