"""The `ddbench` command: argument parsing and error presentation only; the work lives in the library.

One module per command (ddbench/cli/<command>.py), each with NAME, HELP, DESCRIPTION, `add_arguments(parser)`
and `run(args) -> exit code`; what several commands share is in ddbench.cli.common. Imports of the library
happen inside `run`, so that `--help` and a refused flag never load torch.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Sequence

from ddbench.cli import (
    common,
    compare,
    data,
    distill,
    evaluate,
    export,
    import_,
    leaderboard,
    list_,
    results,
    robustness,
    verify,
)
from ddbench.core.errors import DDBenchError
from ddbench.engine.allocator import tune_cpu_allocator

COMMANDS = (evaluate, distill, robustness, import_, export, list_, leaderboard, compare, results, verify, data)
MAKES_ROWS_OR_SETS = (evaluate, distill, robustness, import_)


def __getattr__(name: str):
    if name == "IMPORT_FORMATS":  # the import formats the CLI offers: the registry's (kept for callers of the old constant)
        return tuple(common.import_formats())
    raise AttributeError(name)


LONG = re.compile(r"\S{121,}")


def shorten(message: str, limit: int = 2000) -> str:
    """One readable line: any run of 121+ non-blank characters (a pasted blob, a 2 MB name) cut to its first 100 with
    its length, newlines flattened, the whole capped at `limit` characters."""
    message = LONG.sub(lambda m: f"{m.group(0)[:100]}…({len(m.group(0))} chars)", " ".join(message.split()))
    return message if len(message) <= limit else message[: limit - 1] + "…"


def build_parser() -> argparse.ArgumentParser:
    from ddbench import __version__

    parser = common.Parser(prog="ddbench", description="Benchmark and leaderboard for dataset distillation.")
    parser.add_argument("--version", action="version", version=f"ddbench {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=common.Parser, required=True)
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.DESCRIPTION)
        command.add_arguments(p)
        p.set_defaults(func=command.run)
    return parser


def pin_code_version() -> None:
    """Read the code version once, as the command starts: the rows and sets it makes record the tree it imported,
    not one edited while it trained (the version is cached at its first read)."""
    from ddbench.core.provenance import git_sha

    git_sha()


def main(argv: Sequence[str] | None = None) -> int:
    common.setup_logging()
    tune_cpu_allocator()
    try:
        args = build_parser().parse_args(argv)
        if any(args.func is command.run for command in MAKES_ROWS_OR_SETS):
            pin_code_version()
        return args.func(args)
    except DDBenchError as exc:
        print(f"ddbench: error: {shorten(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ddbench: interrupted; finished rows are saved, run the same command again to resume", file=sys.stderr)
        return 130
    except PermissionError as exc:  # the user's files, not ddbench's code
        if os.environ.get("DDBENCH_DEBUG"):
            raise
        print(f"ddbench: error: permission denied: {exc.filename or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # an internal error: one line, the traceback on request
        if os.environ.get("DDBENCH_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"ddbench: internal error: {type(exc).__name__}: {first} (set DDBENCH_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
