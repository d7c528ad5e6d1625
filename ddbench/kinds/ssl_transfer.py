"""`ssl-transfer`: pre-train an encoder on the set, probe it with few labels on downstream sets (ddbench.engine.transfer)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, ClassVar

from ddbench.cards.card import MAX_EPOCHS, ProtocolCard
from ddbench.core import clock
from ddbench.core.errors import DDBenchError
from ddbench.core.provenance import reset_peak_memory
from ddbench.data import ImageDataset, list_datasets
from ddbench.engine.recipes import PretrainRecipe, ProbeRecipe
from ddbench.engine.transfer import pretrain_encoder, probe_accuracies, task_name
from ddbench.kinds.base import Emit, EvalJob, Need, ProtocolKind, Runtime, check_fits, make_row, register_kind
from ddbench.store.distilled import DistilledSet
from ddbench.store.rows import Row

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SSLParams:
    """ssl-transfer cards' own keys and sections."""

    HASH_EXEMPT: ClassVar[tuple[str, ...]] = ("baselines",)  # which baselines print beside a method changes no row

    budget: int  # images in the set (these cards have no per-class IPC)
    pretrain: PretrainRecipe
    probe: ProbeRecipe
    baselines: tuple[str, ...] = ()  # methods evaluated beside any method on this card


@register_kind
class SSLTransfer(ProtocolKind):
    """ssl-transfer cards: per (arch, seed) pre-train one encoder, probe every downstream set and label fraction."""

    name = "ssl-transfer"
    stage = "probe"
    Params = SSLParams
    per_class_ipc = False
    sets = "ssl-transfer"

    def check_card(self, card: ProtocolCard, need: Need) -> None:
        pre, probe = card.params.pretrain, card.params.probe
        need(card.params.budget >= 1 and bool(probe.downstream), "ssl-transfer cards need budget, [pretrain] and [probe] "
                                                                  "with downstream sets")
        need(0 <= pre.epochs <= MAX_EPOCHS and 0 <= pre.bt_epochs <= MAX_EPOCHS, f"pretrain epochs must be 0..{MAX_EPOCHS}")
        need(pre.batch_size >= 1 and pre.lr > 0 and 0 <= pre.momentum < 1 and pre.weight_decay >= 0,
             "pretrain needs batch_size ≥ 1, lr > 0, momentum in [0, 1) and weight_decay ≥ 0")
        need(all(0 < f <= 1 for f in probe.fractions) and bool(probe.fractions), "probe.fractions must lie in (0, 1]")
        need(probe.l2 >= 0 and 1 <= probe.max_iter <= 100_000, "probe needs l2 ≥ 0 and max_iter 1..100000")
        unknown = sorted(set(probe.downstream) - set(list_datasets()))
        need(not unknown, f"probe.downstream names unknown dataset(s) {', '.join(unknown)}; see `ddbench list datasets`")

    def work(self, card: ProtocolCard, train: ImageDataset) -> tuple[float, float]:
        return float(card.params.pretrain.epochs * card.params.budget), float(len(train.x_train))  # pre-training; embedding

    def datasets(self, card: ProtocolCard) -> list[str]:
        return [card.dataset, *card.params.probe.downstream]

    def row_tasks(self, card: ProtocolCard, present: Callable[[str], bool]) -> list[str]:
        tasks = [task_name(name, f) for name in card.params.probe.downstream if present(name) for f in card.params.probe.fractions]
        if not tasks:
            raise DDBenchError(f"card '{card.id}': none of its downstream datasets ({', '.join(card.params.probe.downstream)}) is "
                               f"present under the data root; run `ddbench data prepare NAME` for at least one")
        return tasks

    def check_set(self, dset: DistilledSet, card: ProtocolCard, train: ImageDataset) -> None:
        if len(dset.images) > card.params.budget:
            raise DDBenchError(f"the set holds {len(dset.images)} images; card '{card.id}' allows {card.params.budget}")
        if dset.label_mode not in ("regression", "none"):
            raise DDBenchError(f"card '{card.id}' pre-trains on target vectors or images alone; the set has {dset.label_mode} labels")

    def run(self, job: EvalJob, card: ProtocolCard, train: ImageDataset, rt: Runtime, base_row: Row, emit: Emit) -> None:
        downstream = {name: rt.datasets[name] for name in card.params.probe.downstream if name in rt.datasets}
        dset = job.sets[0]
        check_fits(dset, card, train)
        for seed in job.seeds:
            reset_peak_memory(rt.device)
            start = clock.now()
            encoder = pretrain_encoder(job.arch, dset, card.params.pretrain, seed, rt.device, progress=rt.progress)
            rows = []
            for name, data in downstream.items():
                for fraction, acc in probe_accuracies(encoder, data, card.params.probe, seed, rt.device).items():
                    rows.append((task_name(name, fraction), name, fraction, acc))
            seconds = clock.now() - start
            emit([make_row(
                base_row, dset, rt.device, arch=job.arch, seed=seed, task=task, downstream=name, label_fraction=fraction,
                accuracy=round(100.0 * acc, 4), n_test=len(downstream[name].y_test), label_mode=dset.label_mode,
                lr=dset.learned_lr, learned_lr_used=bool(dset.learned_lr), batch_mode="loop", wall_time_s=round(seconds, 3),
            ) for task, name, fraction, acc in rows])
            log.info(f"  {card.id} {dset.method} {job.arch} seed {seed}: " +
                     ", ".join(f"{t} {100 * a:.1f}%" for t, _, _, a in rows))
