"""`ddbench data`: list the datasets (what is present, and where) or prepare one (download where allowed, then convert)."""
from __future__ import annotations

import argparse

from ddbench.cli import list_
from ddbench.core.errors import DDBenchError

NAME = "data"
HELP = "list datasets or prepare (download + convert) one"
DESCRIPTION = 'list the datasets (what is present, and where) or prepare one (download where allowed, then convert).'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "prepare"), help="list the datasets, or prepare one")
    p.add_argument("name", nargs="?", help="prepare: the dataset (see `ddbench data list`)")
    p.add_argument("--data-root", help="where datasets live (default: $DDBENCH_DATA or ~/.cache/ddbench/data)")


def run(args: argparse.Namespace) -> int:
    from ddbench.core.paths import resolve_data_root
    from ddbench.data import dataset_status, list_datasets, prepare_dataset

    if args.action == "list":
        args.what, args.pattern = "datasets", None
        print(f"data root: {resolve_data_root(args.data_root)}")
        return list_.run(args)
    if not args.name:
        raise DDBenchError(f"data prepare needs a dataset name: one of {', '.join(list_datasets())}")
    ds = prepare_dataset(args.name, args.data_root)
    st = dataset_status(ds.name, args.data_root)
    shape = f"{ds.channels}×{ds.image_size[0]}×{ds.image_size[1]}"
    print(f"{ds.name}: {len(ds.x_train)} train / {len(ds.x_test)} test images, {shape}, {ds.num_classes} classes, "
          f"from {st['where']} (cached)")
    return 0
