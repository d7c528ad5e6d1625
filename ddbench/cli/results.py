"""`ddbench results`: manage result stores: merge stores from several machines, each row once, conflicts reported."""
from __future__ import annotations

import argparse

from ddbench.cli import common

NAME = "results"
HELP = "manage result stores"
DESCRIPTION = 'manage result stores: merge stores from several machines, each row once, conflicts reported.'


def add_arguments(p: argparse.ArgumentParser) -> None:
    rs_sub = p.add_subparsers(dest="action", parser_class=common.Parser, required=True, help="what to do with stores")
    mg = rs_sub.add_parser("merge", help="merge stores from several machines: each row once, conflicts reported")
    mg.add_argument("stores", nargs="+", help="result store directories to merge in")
    mg.add_argument("--into", help="the store to merge into (default: as evaluate's --results)")


def run(args: argparse.Namespace) -> int:
    from ddbench.core.paths import default_results_dir
    from ddbench.store.results import ResultStore, merge_stores

    into = ResultStore(args.into or default_results_dir())
    written, conflicts = merge_stores([ResultStore(s) for s in args.stores], into)
    for line in conflicts:
        common.log(f"ddbench: {line}")
    print(f"merged {len(args.stores)} store(s) into {into.path}: {written} new row(s), {len(conflicts)} conflict(s)")
    return 0
