"""`ddbench export`: write a ddbench set in another codebase's layout (mtt, tensors, folder)."""
from __future__ import annotations

import argparse

from ddbench.interop.formats import EXPORT_FORMATS

NAME = "export"
HELP = "write a ddbench set in another layout (mtt, tensors, folder)"
DESCRIPTION = "write a ddbench set in another codebase's layout (mtt, tensors, folder)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("set", help="a ddbench set (.safetensors)")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS, help="the layout to write")
    p.add_argument("--out", required=True, help="output folder (tensors: a .pt file or a folder)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ddbench.core.paths import check_output_dir, check_output_file
    from ddbench.interop import export_set
    from ddbench.store.distilled import DistilledSet

    out = Path(args.out)
    check_output_file(out) if args.format == "tensors" and out.suffix == ".pt" else check_output_dir(out)
    written = export_set(DistilledSet.load(args.set), args.format, args.out)
    print(f"wrote {len(written)} file(s) under {args.out}")
    return 0
