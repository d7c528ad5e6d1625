"""`ddbench compare`: the paired test between two methods' standard rows on one card."""
from __future__ import annotations

import argparse

NAME = "compare"
HELP = "paired comparison of two methods on one card (CI, paired t, Wilcoxon, bootstrap P(better))"
DESCRIPTION = ("Compare methods A and B over the evaluation seeds both have on one card: each one's mean, std and "
               "95% CI; the mean paired difference with its 95% CI; paired t and Wilcoxon p-values; and the bootstrap "
               "probability that A is better. Name a run as METHOD@RUN_ID when a method has several.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="a method (or METHOD@RUN_ID)")
    p.add_argument("b", help="the method to compare it with")
    p.add_argument("--protocol", required=True, help="the card")
    p.add_argument("--arch", help="the architecture (default: the card's first)")
    p.add_argument("--results", nargs="+", action="extend", metavar="DIR",
                   help="result store(s) to read, e.g. one per machine (default: as evaluate's --results)")


def run(args: argparse.Namespace) -> int:
    from ddbench.core.paths import default_results_dir
    from ddbench.kinds import load_protocol
    from ddbench.publish.compare import compare
    from ddbench.store.results import ResultStore

    stores = [ResultStore(d) for d in (args.results or [default_results_dir()])]
    result = compare(stores, load_protocol(args.protocol), args.a, args.b, args.arch)
    print("\n".join(result.lines()))
    return 0
