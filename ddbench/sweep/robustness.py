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
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddbench.cards.card import ProtocolCard
from ddbench.core.paths import atomic_write
from ddbench.data import load_dataset
from ddbench.distill.artefacts import selection_key
from ddbench.distill.method import Method
from ddbench.distill.registry import create_method
from ddbench.engine.cost import forward_flops, training_flops, training_steps
from ddbench.engine.realtrain import RealTrainRecipe, cached_real_network, real_network_path, resume_path
from ddbench.engine.resume import epochs_left
from ddbench.engine.train import accuracy
from ddbench.store.distilled import DistilledSet
from ddbench.store.rows import ROBUST_TASK, ScoreRecord, build_score_record, row_key
from ddbench.sweep.build import Request, Sweep, build_sweep, collect, plan
from ddbench.sweep.executors import LocalExecutor
from ddbench.sweep.graph import Emit, Task, Workspace
from ddbench.sweep.options import EvalOptions, card_space, distill_cached

log = logging.getLogger(__name__)

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


@dataclass
class TrainFullData:
    """A graph task's action: `arch` trained on the whole training set (one cached network per dataset and arch), its
    test accuracy (a fraction) written beside it as JSON, so the driver reads it wherever the task ran."""

    card: ProtocolCard
    arch: str
    network: str  # relative to the cache directory

    def run(self, ws: Workspace, emit: Emit) -> None:
        train = ws.datasets[self.card.dataset]
        space = card_space(self.card, train)
        model = cached_real_network(self.arch, train, space, FULL_DATA_RECIPE, 0, ws.device, ws.cache_dir, progress=ws.progress)
        acc = accuracy(model, space.from_uint8(train.x_test, ws.device), train.y_test.to(ws.device))
        with atomic_write(ws.cache_dir / _accuracy_file(self.network), "w") as handle:
            json.dump({"accuracy": acc, "arch": self.arch}, handle)

    def outputs(self, cache_dir: Path) -> list[Path]:
        return [cache_dir / self.network, cache_dir / _accuracy_file(self.network)]


def _accuracy_file(network: str) -> str:
    return str(Path(network).with_suffix(".accuracy.json"))


def _full_data_tasks(sweep: Sweep, card: ProtocolCard, archs: list[str], cache_dir: Path) -> dict[str, Path]:
    """One full-data task per arch in the sweep's graph (done when its accuracy file exists); arch -> accuracy file."""
    train = sweep.datasets.get(card.dataset) or load_dataset(card.dataset, sweep.opts.data_root)
    sweep.datasets[card.dataset] = train
    space = card_space(card, train)
    files = {}
    for arch in archs:
        network = real_network_path(arch, train, space, FULL_DATA_RECIPE, 0, cache_dir).relative_to(cache_dir)
        action = TrainFullData(card, arch, str(network))
        files[arch] = cache_dir / _accuracy_file(str(network))
        selection = selection_key(str(network))
        if selection in sweep.graph.tasks:  # a coreset's selection network is this very network: trained once, there
            deps, left, note = (selection,), 0, "the selection network"
        else:  # an interrupted training resumes: only the rest is work
            deps, (left, note) = (), epochs_left(resume_path(cache_dir / network), FULL_DATA_RECIPE.epochs)
        flops = (training_flops(arch, train.num_classes, train.channels, train.image_size, left * len(train.x_train))
                 + forward_flops(arch, train.num_classes, train.channels, *map(int, train.image_size)) * len(train.x_test))
        steps = training_steps(left, len(train.x_train), FULL_DATA_RECIPE.batch_size)
        label = f"{arch} on all of {train.name}" + (f" ({note})" if note else "")
        sweep.graph.add(Task(f"fulldata:{network}", "fulldata", label, action, deps=deps, flops=flops, steps=steps,
                             done=files[arch].is_file()))
    return files


def robustness_requests(subject: Method | DistilledSet, card: ProtocolCard, external: bool = False) -> list[Request]:
    """The evaluations the scores need: the subject and a random real subset (seed-paired), each under the card and
    without augmentation, and a given set with soft labels also with hard ones."""
    plain = card.with_overrides(augment="none")
    random = create_method("random")
    requests = [Request(card, method=random), Request(plain, method=random)]
    if isinstance(subject, DistilledSet):
        requests += [Request(c, dset=subject, external=external) for c in (card, plain)]
        if subject.label_mode != "hard":
            requests.append(Request(card.with_overrides(labels="hard"), dset=_hard(subject), external=external))
    else:
        requests += [Request(c, method=subject) for c in (card, plain)]
    return requests


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


def robustness_rows(subject: Method | DistilledSet, card: ProtocolCard, opts: EvalOptions, executor: Any = None,
                    plan_only: bool = False) -> list[ScoreRecord] | str:
    """Robustness records (ddbench.store.rows.ScoreRecord, task "robust") for a method's sets or one set, per arch
    and seed, appended to the store. Every network they need is a task of one job graph (the evaluations as ordinary
    rows, the full-data networks as `fulldata` tasks), run by `executor` (in-process by default); `plan_only`
    returns the graph's plan instead. A method whose sets carry soft labels gets its hard-label evaluations as a
    second graph once its sets exist."""
    executor = executor or LocalExecutor()
    requests = robustness_requests(subject, card, external=opts.external)
    sweep = build_sweep(requests, opts, executor.seeds_per_task)
    archs = list(opts.archs or card.archs)
    accuracy_files = _full_data_tasks(sweep, card, archs, opts.cache_dir)
    if plan_only:
        soft = "" if isinstance(subject, DistilledSet) else (
            "\n(a method whose sets carry soft labels adds one hard-label evaluation per seed once its sets exist)")
        return plan(sweep, executor.name) + soft
    _run(sweep, executor)
    rows = {i: collect(req, opts) for i, req in enumerate(requests)}
    random_rows, set_rows = {True: rows[0], False: rows[1]}, {True: rows[2], False: rows[3]}
    soft = any(r.get("label_mode") not in ("hard", None) for r in set_rows[True])
    if not soft:
        hard_rows = set_rows[True]
    elif isinstance(subject, DistilledSet):
        hard_rows = rows[4]
    else:  # the method's sets exist now: each seed's set, relabelled hard, evaluated under that seed
        train = sweep.datasets[card.dataset]
        hard_card = card.with_overrides(labels="hard")
        seeds = range(opts.seeds or card.seeds)
        hard_requests = [(s, Request(hard_card, dset=_hard(distill_cached(subject, card, train, s, opts)))) for s in seeds]
        _run(build_sweep([r for _, r in hard_requests], dataclasses.replace(opts, only_seeds=None), executor.seeds_per_task),
             executor)
        hard_rows = [row for s, r in hard_requests for row in collect(r, opts) if row["seed"] == s]
    out = []
    for arch in dict.fromkeys(r["arch"] for r in set_rows[True]):
        full = json.loads(accuracy_files[arch].read_text())["accuracy"]
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


def _run(sweep: Sweep, executor: Any) -> None:
    if any(not t.done for t in sweep.graph.order()):
        summary = executor.run(sweep)
        log.info(summary.line())
        summary.raise_if_failed()


__all__ = ["normalise", "label_robust_score", "aug_robust_score", "robustness_rows", "robustness_requests", "TrainFullData"]
