"""`ddbench leaderboard`: publish a result store as markdown tables, and optionally as a static site."""
from __future__ import annotations

import argparse

from ddbench.core.errors import DDBenchError

NAME = "leaderboard"
HELP = "publish the result store as markdown tables"
DESCRIPTION = 'publish a result store as markdown tables, and optionally as a static site.'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", help="result store directory (default: as evaluate's --results)")
    p.add_argument("--out", help="markdown file (default: <results>/LEADERBOARD.md)")
    p.add_argument("--print", action="store_true", help="print instead of writing a file")
    p.add_argument("--html", metavar="DIR", help="also write a static site (index + one page per dataset) into DIR")
    p.add_argument("--sets", nargs="*", action="extend", metavar="DIR", help="where to look for the ranked sets' files for the image grids "
                    "(default: the cache's sets/ folder)")


def run(args: argparse.Namespace) -> int:
    from ddbench.core.paths import check_output_dir, check_output_file, default_results_dir
    from ddbench.publish.leaderboard import publish, render
    from ddbench.store.results import ResultStore

    if args.out:
        check_output_file(args.out)
    if args.html:  # the target and an optional dependency are checked before anything is written
        from ddbench.publish.site import _pyplot

        check_output_dir(args.html)
        _pyplot()
    store = ResultStore(args.results or default_results_dir())
    if not store.path.is_file():
        raise DDBenchError(f"no result store at {store.path}; run `ddbench evaluate` first or pass --results DIR")
    if args.print:
        print(render(store))
        return 0
    path = publish(store, args.out)
    print(f"wrote {path}")
    if args.html:
        from ddbench.core.paths import user_cache_root
        from ddbench.publish.site import build_site

        pages = build_site(store, args.html, args.sets if args.sets is not None else [user_cache_root() / "sets"])
        print(f"wrote {len(pages)} page(s) under {args.html}")
    return 0
