"""`ddbench distill`: distil one set with a method under a card (cached, resumable) and save it, with optional snapshots."""
from __future__ import annotations

import argparse

from ddbench.cli import common
from ddbench.core.errors import DDBenchError

NAME = "distill"
HELP = "distil a set with a method under a card and save it"
DESCRIPTION = 'distil one set with a method under a card (cached, resumable) and save it, with optional snapshots.'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", required=True, help="a registered method (see `ddbench list methods`)")
    p.add_argument("--protocol", required=True, help="the card the set is distilled under (id or .toml path)")
    p.add_argument("--out", required=True, help="output file (.safetensors)")
    p.add_argument("--seed", type=int, default=0, help="the distillation seed (default 0)")
    p.add_argument("--cfg", action="append", metavar="KEY=VALUE", help="method option (repeatable)")
    p.add_argument("--snapshots", metavar="N,M,...",
                    help="also write the set after these outer steps (iterations; DD: epochs) as OUT-stepN.safetensors")
    common.add_common(p)
    common.add_scale(p)


def run(args: argparse.Namespace) -> int:
    from ddbench.core.paths import atomic_write, check_output_file, user_cache_root
    from ddbench.core.provenance import pick_device
    from ddbench.distill.registry import create_method
    from ddbench.kinds import load_protocol
    from ddbench.store.distilled import DistilledSet
    from ddbench.sweep.build import build_distill_sweep, plan
    from ddbench.sweep.evaluate import EvalOptions, set_cache_path, snapshot_path

    if args.seed < 0:
        raise DDBenchError(f"--seed must be 0 or more, got {args.seed}")
    check_output_file(args.out)  # before any work
    card = load_protocol(args.protocol)
    method = create_method(args.method, **common.parse_cfg(args.cfg))
    snapshots = _parse_snapshots(args.snapshots)
    opts = EvalOptions(device=pick_device(args.device), store=None, data_root=args.data_root,
                       progress=not args.no_progress, snapshots=snapshots, cache_dir=user_cache_root())
    executor = common.executor_for(args)
    sweep = build_distill_sweep(method, card, args.seed, opts)
    if args.plan:
        print(plan(sweep, executor.name))
        return 0
    if any(not t.done for t in sweep.graph.order()):
        summary = executor.run(sweep)
        summary.raise_if_failed()
    train = sweep.datasets[card.dataset]
    cached_final = set_cache_path(method, card, train, args.seed, opts)
    dset = DistilledSet.load(cached_final)
    out = dset.save(args.out)
    print(f"wrote {out}: {len(dset.images)} images {'×'.join(map(str, dset.image_shape))}, {dset.label_mode} labels, "
          f"set id {dset.set_id} (distilled in {dset.extra.get('distill_time_s', 0):.1f} s)")
    for step in snapshots:
        cached = snapshot_path(cached_final, step)
        if not cached.is_file():
            raise DDBenchError(f"method '{method.name}' wrote no snapshot after {step} steps (past its last step, or "
                               "the method takes no snapshots)")
        target = snapshot_path(out, step)
        with atomic_write(target) as handle:
            handle.write(cached.read_bytes())
        print(f"wrote {target} (the set after {step} steps)")
    return 0


def _parse_snapshots(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        steps = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise DDBenchError(f"--snapshots takes comma-separated step counts like 100,500,1000, not {text!r}") from None
    if any(step < 0 for step in steps):
        raise DDBenchError(f"--snapshots takes step counts of 0 or more (0: the starting set), not {text!r}")
    return tuple(steps)
