"""`dd-native`: Dataset Distillation's own regime, fresh networks trained with the set's learned steps (ddbench.engine.native)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from ddbench.cards.card import ProtocolCard
from ddbench.core.errors import DDBenchError
from ddbench.core.provenance import reset_peak_memory
from ddbench.data import ImageDataset
from ddbench.engine.native import evaluate_native
from ddbench.kinds.base import Emit, EvalJob, Runtime, _check_class_budget, check_fits, make_row, register_kind
from ddbench.kinds.supervised import Supervised
from ddbench.store.distilled import DistilledSet
from ddbench.store.rows import Row

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DDNativeParams:
    """dd-native cards' own key."""

    init: Literal["random", "fixed"]  # "random": fresh networks per seed; "fixed": the set's own initialisation


@register_kind
class DDNative(Supervised):
    """dd-native cards: every seed's network trained with the set's own steps, all at once."""

    name = "dd-native"
    Params = DDNativeParams
    sets = "dd-native"

    def check_set(self, dset: DistilledSet, card: ProtocolCard, train: ImageDataset) -> None:
        _check_class_budget(dset, card, train)
        info = dset.extra.get("dd") or {}
        if info.get("init") != card.params.init:
            raise DDBenchError(f"card '{card.id}' evaluates {card.params.init}-init DD sets; this set is "
                               f"{info.get('init') or 'not a DD set'}")
        if info.get("arch") not in card.archs:
            raise DDBenchError(f"card '{card.id}' trains {', '.join(card.archs)}; the set was distilled for {info.get('arch')}")
        self.check_labels(dset, card, train)

    def run(self, job: EvalJob, card: ProtocolCard, train: ImageDataset, rt: Runtime, base_row: Row, emit: Emit) -> None:
        y_test = train.y_test.to(rt.device)
        # one set for every seed, or (one set per seed) seed i with set i
        pairs = [(job.seeds, job.sets[0])] if len(job.sets) == 1 else [([s], d) for s, d in zip(job.seeds, job.sets)]
        for seeds, dset in pairs:
            check_fits(dset, card, train)
            if job.arch != dset.extra["dd"]["arch"]:
                raise DDBenchError(f"a DD set trains the arch it was distilled for ({dset.extra['dd']['arch']}), not {job.arch}")
            reset_peak_memory(rt.device)
            x_test = dset.space.from_uint8(train.x_test, rt.device)
            result = evaluate_native(dset, job.arch, seeds, x_test, y_test, rt.device, rt.progress)
            accs = result.accuracies
            emit([make_row(
                base_row, dset, rt.device, arch=job.arch, seed=seed, accuracy=round(100.0 * acc, 4), n_test=len(y_test),
                init_accuracy=round(100.0 * before, 4), label_mode=dset.label_mode, lr=None, learned_lr_used=True,
                batch_mode=f"native-vmap{len(seeds)}", wall_time_s=round(result.seconds / len(seeds), 4),
            ) for seed, acc, before in zip(seeds, accs, result.init_accuracies)])
            log.info(f"  {card.id} {job.arch}: {len(accs)} networks, mean {100 * sum(accs) / len(accs):.2f}% "
                     f"(before training {100 * sum(result.init_accuracies) / len(accs):.2f}%)")
