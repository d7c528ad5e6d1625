"""`ddbench robustness`: DD-Ranking's label- and augmentation-robust scores (LRS, ARS) of a method or a set under one card."""
from __future__ import annotations

import argparse

from ddbench.cli import common
from ddbench.core.errors import DDBenchError

NAME = "robustness"
HELP = "DD-Ranking's label- and augmentation-robust scores (as rows and leaderboard columns)"
DESCRIPTION = ("DD-Ranking's label- and augmentation-robust scores (LRS, ARS) of a method or a set under one card; every network "
               "they need is a task of one job graph (--plan, --executor ray).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", help="a registered method")
    p.add_argument("--distilled", help="a set file (with --format: another codebase's layout)")
    p.add_argument("--protocol", required=True, help="one card")
    p.add_argument("--arch", action="append", help="architecture(s) (default: the card's)")
    p.add_argument("--seeds", type=int, help="number of seeds (default: the card's)")
    p.add_argument("--epochs", type=int, help="shorter recipe for quick checks; rows are marked non-standard")
    p.add_argument("--cfg", action="append", metavar="KEY=VALUE", help="method option (repeatable)")
    p.add_argument("--results", help="result store directory (default: as evaluate's)")
    p.add_argument("--batch-mode", choices=("auto", "loop", "vmap"), default="auto",
                   help="train seeds one by one, stacked with vmap, or pick the faster by timing (default)")
    common.add_import_flags(p, with_dataset=False)
    common.add_scale(p)
    common.add_common(p)


def run(args: argparse.Namespace) -> int:
    """DD-Ranking's label- and augmentation-robust scores of a method or a set under one card."""
    from tabulate import tabulate

    from ddbench.distill.registry import create_method
    from ddbench.sweep.robustness import robustness_rows

    if bool(args.method) == bool(args.distilled):
        raise DDBenchError("robustness takes exactly one of --method NAME or --distilled PATH")
    cards = common.protocols([args.protocol])
    if len(cards) != 1:
        raise DDBenchError(f"robustness scores one card; --protocol '{args.protocol}' matches {len(cards)} "
                           f"({', '.join(c.id for c in cards[:5])}{', ...' if len(cards) > 5 else ''})")
    (card,) = cards
    card = card.with_overrides(epochs=args.epochs)
    opts = common.options(args)
    opts.external = bool(args.distilled)
    subject = common.distilled(args, [card]) if args.distilled else create_method(args.method, **common.parse_cfg(args.cfg))
    result = robustness_rows(subject, card, opts, common.executor_for(args), plan_only=args.plan)
    if args.plan:
        print(result)
        return 0
    rows = result
    table = [[r["arch"], r["seed"], f"{r['inputs']['accuracy']:.2f}", *(f"{r['scores'][k]:+.4f}" if k.startswith(("ior", "hlr", "gain"))
              else f"{r['scores'][k]:.4f}" for k in ("ior", "hlr", "lrs", "gain_aug", "gain_plain", "ars"))] for r in rows]
    print(tabulate(table, headers=["arch", "seed", "acc %", "IOR", "HLR", "LRS", "Δ aug", "Δ no aug", "ARS"], tablefmt="github"))
    return 0
