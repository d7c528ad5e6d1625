"""`ddbench list`: list the registered methods (with their options), protocol cards, tested architectures or datasets."""
from __future__ import annotations

import argparse
import fnmatch

NAME = "list"
HELP = "list methods, protocols, archs or datasets"
DESCRIPTION = 'list the registered methods (with their options), protocol cards, tested architectures or datasets.'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=("methods", "protocols", "archs", "datasets"), help="what to list")
    p.add_argument("pattern", nargs="?", help="wildcard filter, e.g. 'cifar10-*'")
    p.add_argument("--data-root", help="datasets: where to look (default: $DDBENCH_DATA or ~/.cache/ddbench/data)")


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    pattern = args.pattern or "*"
    if args.what == "methods":
        from ddbench.distill.registry import list_methods, method_class, method_summary

        names = list_methods(pattern)
        if args.pattern and names == [args.pattern.lower()]:  # one method named: its options, and per-card values
            cls = method_class(names[0])
            print(f"{names[0]}: {method_summary(names[0])}\n")
            table = [[k, v, "; ".join(f"{pat}: {cfg[k]}" for pat, cfg in cls.protocol_cfg.items() if k in cfg) or "—"]
                     for k, v in cls.default_cfg.items()]
            print(tabulate(table, headers=["option (--cfg KEY=VALUE)", "default", "per card"], tablefmt="github")
                  if table else "no options")
        else:
            table = [[n, method_summary(n)] for n in names]
            print(tabulate(table, headers=["method", "what"], tablefmt="github"))
            print("\n`ddbench list methods NAME` shows a method's options (--cfg KEY=VALUE), defaults and per-card values.")
    elif args.what == "protocols":
        from ddbench.cards.card import list_protocols
        from ddbench.kinds import load_protocol

        table = []
        for pid in list_protocols(pattern):
            c = load_protocol(pid)
            table.append([pid, c.dataset, c.ipc, ",".join(c.archs), c.seeds, c.train.epochs, c.train.augment, c.labels, c.hash])
        headers = ["protocol", "dataset", "ipc", "archs", "seeds", "epochs", "augment", "labels", "hash"]
        print(tabulate(table, headers=headers, tablefmt="github"))
    elif args.what == "archs":
        import timm

        from ddbench.models import TESTED_ARCHS

        table = [[n, t.adaptation, f"{t.min_px}-{t.max_px}"] for n, t in TESTED_ARCHS.items() if fnmatch.fnmatch(n, pattern)]
        print(tabulate(table, headers=["arch (tested)", "small-input adaptation", "input px"], tablefmt="github"))
        print(f"\nAny of timm's {len(timm.list_models(pattern))} models matching '{pattern}' also works as --arch "
              "(untested ones get the same adaptation rules); wildcards and comma lists expand, e.g. --arch 'convnet*,resnet18'.")
    else:
        from ddbench.data import dataset_status, list_datasets

        table = []
        for n in list_datasets(pattern):
            st = dataset_status(n, args.data_root)
            table.append([n, st["description"], "yes" if st["present"] else "no", st["where"]])
        print(tabulate(table, headers=["dataset", "what", "present", "where"], tablefmt="github"))
    return 0
