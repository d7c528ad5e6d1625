"""The evaluation entry points: evaluate a method (distilled under the card, cached) or a set made anywhere.

The engine never knows how a set was made. `evaluate_method` distils (or reuses a cached set)
and evaluates it the way `evaluate_set` evaluates a file made anywhere. Both build a job graph
(ddbench.sweep.build) and run it with an executor (ddbench.sweep.executors; in-process by default).
Rows are appended to the store as soon as each evaluation finishes; rows already present are
skipped, so a killed run resumes without losing or duplicating anything.
"""
from __future__ import annotations

import logging
from typing import Any

from ddbench.cards.card import ProtocolCard
from ddbench.distill.method import Method
from ddbench.kinds import check_fits, training_space  # noqa: F401  (part of this module's interface)
from ddbench.store.distilled import DistilledSet
from ddbench.sweep.build import Request, build_sweep, collect
from ddbench.sweep.executors import LocalExecutor
from ddbench.sweep.options import (  # noqa: F401  (part of this module's interface)
    EvalOptions,
    card_space,
    config_hash,
    distill_cached,
    set_cache_path,
    snapshot_path,
)

log = logging.getLogger(__name__)
_training_space = training_space


def evaluate_set(dset: DistilledSet, card: ProtocolCard, opts: EvalOptions, executor: Any = None) -> list[dict[str, Any]]:
    """Evaluate a distilled set (made anywhere) under `card`; returns all rows the request covers."""
    return run_requests([Request(card, dset=dset, external=opts.external)], opts, executor)[0]


def evaluate_method(method: Method, card: ProtocolCard, opts: EvalOptions, executor: Any = None) -> list[dict[str, Any]]:
    """Distil with `method` under `card` (cached) and evaluate; returns all rows the request covers."""
    return run_requests([Request(card, method=method)], opts, executor)[0]


def run_requests(requests: list, opts: EvalOptions, executor: Any = None, seeds_per_task: int | None = None
                 ) -> tuple[list[dict[str, Any]], Any]:
    """Build one job graph for `requests`, run it (in-process unless `executor` is given) and return
    (every stored row the requests cover, the run's summary); raises if any task failed."""
    executor = executor or LocalExecutor()
    if seeds_per_task is None:
        seeds_per_task = getattr(executor, "seeds_per_task", None)
    sweep = build_sweep(requests, opts, seeds_per_task)
    summary = executor.run(sweep) if any(not t.done for t in sweep.graph.order()) else None
    if summary is not None:
        summary.raise_if_failed()
    return [row for req in requests for row in collect(req, opts)], summary
