"""`ddbench import`: convert a set saved by another codebase into a ddbench set, recording every assumption made."""
from __future__ import annotations

import argparse

from ddbench.cli import common

NAME = "import"
HELP = "convert a set saved by another codebase (MTT, DATM, DC, MKDT, tensors, folder)"
DESCRIPTION = 'convert a set saved by another codebase into a ddbench set, recording every assumption made.'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="the source file or folder")
    p.add_argument("--out", required=True, help="output ddbench set (.safetensors)")
    common.add_import_flags(p, with_dataset=True)
    p.add_argument("--data-root", help="where datasets live (default: $DDBENCH_DATA or ~/.cache/ddbench/data)")


def run(args: argparse.Namespace) -> int:
    from ddbench.core.paths import check_output_file
    from ddbench.interop import import_set

    check_output_file(args.out)  # before reading anything
    dset = import_set(args.src, common.import_options(args, args.dataset))
    path = dset.save(args.out)
    print(f"wrote {path}: {len(dset.images)} images {'×'.join(map(str, dset.image_shape))}, {dset.label_mode} labels, "
          f"set id {dset.set_id}")
    for key, value in dset.extra["imported"]["assumptions"].items():
        print(f"  assumed {key}: {value}")
    return 0
