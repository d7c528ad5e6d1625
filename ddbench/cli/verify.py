"""`ddbench verify`: re-run one seed of a stored row and report whether it reproduces."""
from __future__ import annotations

import argparse

from ddbench.cli import common
from ddbench.core.errors import DDBenchError

NAME = "verify"
HELP = "re-run one seed of a stored row and report whether it reproduces"
DESCRIPTION = 're-run one seed of a stored row and report whether it reproduces.'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", help="result store directory (default: as evaluate's --results)")
    p.add_argument("--protocol", help="the row's card (default: the first standard row)")
    p.add_argument("--method", help="the row's method")
    p.add_argument("--seed", type=int, help="the row's seed")
    p.add_argument("--distilled", help="the set file, for rows made with evaluate --distilled")
    common.add_common(p)


def run(args: argparse.Namespace) -> int:
    from ddbench.core.paths import default_results_dir
    from ddbench.core.provenance import pick_device
    from ddbench.store.results import ResultStore
    from ddbench.sweep.verify import pick_row, verify_row

    store = ResultStore(args.results or default_results_dir())
    if not store.path.is_file():
        raise DDBenchError(f"no result store at {store.path}; pass --results DIR")
    row = pick_row(store, args.protocol, args.method, args.seed)
    verdict = verify_row(row, pick_device(args.device), args.data_root, args.distilled)
    print(verdict.line())
    return 0 if verdict.reproduced else 1
