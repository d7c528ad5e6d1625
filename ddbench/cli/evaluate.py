"""`ddbench evaluate`: evaluate methods or a distilled set under protocol cards, as one resumable job graph (in-process or on Ray)."""
from __future__ import annotations

import argparse

from ddbench.cli import common
from ddbench.core.errors import DDBenchError

NAME = "evaluate"
HELP = "evaluate a method or a distilled set under protocol cards"
DESCRIPTION = 'evaluate methods or a distilled set under protocol cards, as one resumable job graph (in-process or on Ray).'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", nargs="+", action="extend", help="registered method name(s): repeatable, space- or "
                                                                  "comma-separated (see `ddbench list methods`)")
    p.add_argument("--distilled", help="path to a distilled set (.safetensors), or with --format a set in another "
                                        "codebase's layout (imported on the fly)")
    p.add_argument("--protocol", nargs="+", action="extend", help="card id(s), wildcards or .toml paths; repeatable "
                                                                    "(default: the quick digits card)")
    p.add_argument("--arch", action="append", help="architecture(s); comma lists and wildcards (default: the card's)")
    p.add_argument("--seeds", type=int, help="number of evaluation seeds, 0..N-1 (default: the card's)")
    p.add_argument("--epochs", type=int, help="shorter recipe for quick checks; rows are marked non-standard")
    p.add_argument("--cfg", action="append", metavar="KEY=VALUE",
                    help="method option (repeatable); METHOD.KEY=VALUE for one of several methods")
    p.add_argument("--results", help="result store directory (default: $DDBENCH_RESULTS, else a per-user store, "
                                      "~/.local/share/ddbench/results; name leaderboard/ to publish)")
    p.add_argument("--no-baselines", action="store_true", help="skip the baselines an ssl-transfer card lists")
    p.add_argument("--teacher", help="MKDT: a teacher checkpoint (ResNet-18 state dict) instead of training one")
    p.add_argument("--precision", choices=("fp32", "tf32", "bf16"),
                    help="override the card's precision (rows are then non-standard; bf16: autocast in evaluation)")
    p.add_argument("--batch-mode", choices=("auto", "loop", "vmap"), default="auto",
                    help="train seeds one by one, stacked with vmap, or pick the faster by timing (default)")
    common.add_import_flags(p, with_dataset=False)
    common.add_common(p)
    common.add_scale(p)


def run(args: argparse.Namespace) -> int:
    if bool(args.method) == bool(args.distilled):
        raise DDBenchError("evaluate takes exactly one of --method NAME or --distilled PATH")
    common.check_bounds(args)  # before torch is imported: a bad number costs nothing
    from ddbench.distill.registry import create_method
    from ddbench.kinds import load_protocol
    from ddbench.sweep.build import Request

    cfg = common.parse_cfg(args.cfg)
    if args.teacher:
        from ddbench.engine.teacher import read_teacher_state

        read_teacher_state(args.teacher)  # a bad checkpoint is refused before any method runs
        cfg["teacher"] = args.teacher
    methods = common.methods(",".join(args.method), cfg) if args.method else []
    if args.method and not methods:
        raise DDBenchError("--method needs a name (see `ddbench list methods`)")
    cards = common.protocols(args.protocol)
    if not cards:
        if args.distilled:
            raise DDBenchError("--distilled needs --protocol: the card the set is evaluated under")
        quick = load_protocol(type(methods[0]).quick_card)
        common.log(common.QUICK_NOTE.replace("digits-quick", quick.id))
        cards = [quick]
    cards = [card.with_overrides(epochs=args.epochs, precision=args.precision if args.precision != card.precision else None)
             for card in cards]
    dset = common.distilled(args, cards) if args.distilled else None
    opts = common.options(args)
    opts.external = dset is not None  # a set from a file: its method name is a claim
    common.log(f"device: {opts.device}; results: {opts.store.path}")
    requests: list[Request] = []
    for card in cards:
        if card.overrides:
            common.log(f"{card.id}: recipe changed by flag ({card.overrides}); rows are marked non-standard and kept off the leaderboard")
        if dset is not None:
            requests.append(Request(card, dset=dset, external=True))
        requests += [Request(card, method=m) for m in methods]
        names = {m.name for m in methods}
        baselines = list(card.param("baselines", ()))
        extra = baselines if methods and not args.no_baselines and not names & set(baselines) else []
        if extra:
            common.log(f"{card.id}: evaluating the card's baselines ({', '.join(extra)}) beside {', '.join(sorted(names))}")
            requests += [Request(card, method=create_method(n)) for n in extra]  # --cfg applies to the methods only
    rows = common.run_sweep(requests, opts, args)
    if not args.plan:
        print(common.summary_table(rows))
    return 0
