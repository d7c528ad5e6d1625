"""What the commands share: the one-line parser, logging, the flags several commands take, and option parsing."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Sequence

from ddbench.core.errors import DDBenchError

QUICK_NOTE = ("no --protocol given: running the method's quick card 'digits-quick' (scikit-learn's 8×8 digits; "
              "a smoke test, not a leaderboard protocol)")


class Once(argparse.Action):
    """A single-valued option given twice is refused (argparse would keep the last silently)."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = getattr(namespace, "_given", set())
        if self.dest in seen and getattr(namespace, self.dest) != values:
            parser.error(f"{option_string} given twice ({getattr(namespace, self.dest)!r}, then {values!r}); give it once")
        seen.add(self.dest)
        namespace._given = seen
        setattr(namespace, self.dest, values)


class Parser(argparse.ArgumentParser):
    """One-line errors; an option that takes one value refuses a second (no flag silently drops an earlier value)."""

    def error(self, message: str) -> None:  # one line, exit 2
        raise DDBenchError(f"{message} (see `{self.prog} --help`)")

    def add_argument(self, *args, **kwargs):
        if args and str(args[0]).startswith("--") and kwargs.get("action") in (None, "store") and kwargs.get("nargs") is None:
            kwargs["action"] = Once
        return super().add_argument(*args, **kwargs)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class StderrHandler(logging.Handler):
    """The library's log records on the current stderr: progress notes plain, warnings marked. Written through
    tqdm.write, which lifts a progress bar being drawn and redraws it below, so a result never lands on a bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            message = f"ddbench: warning: {message}"
        tqdm.write(message, file=sys.stderr)
        sys.stderr.flush()


def setup_logging() -> None:
    logger = logging.getLogger("ddbench")
    if not any(isinstance(h, StderrHandler) for h in logger.handlers):
        logger.addHandler(StderrHandler())
    logger.setLevel(logging.DEBUG if os.environ.get("DDBENCH_DEBUG") else logging.INFO)


def parse_cfg(items: Sequence[str] | None) -> dict[str, str]:
    cfg = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DDBenchError(f"--cfg takes KEY=VALUE, got '{item}'")
        cfg[key.strip()] = value.strip()
    return cfg


def protocols(names: Sequence[str] | None) -> list:
    from ddbench.cards.card import list_protocols
    from ddbench.kinds import load_protocol

    cards = []
    for name in names or []:
        if any(ch in name for ch in "*?[") and not name.endswith(".toml"):
            matched = list_protocols(name)
            if not matched:
                raise DDBenchError(f"--protocol '{name}' matches no card; see `ddbench list protocols`")
            cards += [load_protocol(m) for m in matched]
        else:
            cards.append(load_protocol(name))
    return cards


def check_bounds(args: argparse.Namespace) -> None:
    from ddbench.cards.card import MAX_EPOCHS, MAX_SEEDS

    if args.seeds is not None and not 1 <= args.seeds <= MAX_SEEDS:
        raise DDBenchError(f"--seeds must be 1..{MAX_SEEDS}, got {args.seeds}")
    if args.epochs is not None and not 0 <= args.epochs <= MAX_EPOCHS:
        raise DDBenchError(f"--epochs must be 0..{MAX_EPOCHS}, got {args.epochs}")


def options(args: argparse.Namespace):
    from ddbench.core.paths import default_results_dir
    from ddbench.core.provenance import pick_device
    from ddbench.models import expand_archs
    from ddbench.store.results import ResultStore
    from ddbench.sweep.evaluate import EvalOptions

    # a plan, or Ray workers, may use a device this head lacks (a CPU-only head driving GPU workers)
    elsewhere = bool(getattr(args, "plan", False)) or getattr(args, "executor", "local") != "local"
    device = pick_device(args.device, here=not elsewhere)  # precision (TF32 or not) is the card's, set by the engine
    return EvalOptions(
        device=device, store=ResultStore(args.results or default_results_dir()), data_root=args.data_root,
        archs=expand_archs(args.arch) if args.arch else None, seeds=args.seeds, mode=args.batch_mode,
        progress=not args.no_progress,
    )


def summary_table(rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    from ddbench.publish.leaderboard import load_published, summarize

    if not rows:
        return "no results"
    pub = {(p.protocol, p.method, p.task): p.accuracy for p in load_published()[0]}
    summary = summarize(rows)
    with_tasks = bool((summary["task"] != "").any())
    table = []
    for r in summary.itertuples():
        published = pub.get((r.protocol, r.method, r.task))
        table.append([r.protocol, r.method, r.arch, *([r.task] if with_tasks else []), f"{r.mean:.2f} ± {r.std:.2f}", r.n,
                      f"{published:.1f}" if published is not None else "—"])
    headers = ["protocol", "method", "arch", *(["task"] if with_tasks else []), "accuracy (%)", "seeds", "published"]
    return tabulate(table, headers=headers, tablefmt="github")


def methods(text: str | None, cfg: dict[str, str]) -> list:
    """--method NAME or a comma list. --cfg KEY=VALUE goes to every method, --cfg METHOD.KEY=VALUE to one."""
    from ddbench.distill.registry import create_method

    names = list(dict.fromkeys(n.strip().lower() for n in (text or "").split(",") if n.strip()))
    scoped = {k for k in cfg if "." in k and k.split(".", 1)[0] in names}
    unknown = sorted(k.split(".", 1)[0] for k in cfg if "." in k and k not in scoped)
    if unknown:
        raise DDBenchError(f"--cfg {unknown[0]}.KEY=VALUE names a method not given to --method ({', '.join(names)})")
    shared = {k: v for k, v in cfg.items() if k not in scoped}
    return [create_method(name, **shared, **{k.split(".", 1)[1]: v for k, v in cfg.items()
                                             if k in scoped and k.split(".", 1)[0] == name}) for name in names]


def executor_for(args: argparse.Namespace):
    from ddbench.sweep.executors import make_executor

    if args.workers is not None and args.workers < 1:
        raise DDBenchError(f"--workers must be 1 or more, got {args.workers}")
    if args.threads_per_task is not None and args.threads_per_task < 1:
        raise DDBenchError(f"--threads-per-task must be 1 or more, got {args.threads_per_task}")
    return make_executor(args.executor, args.address, args.workers, args.threads_per_task, getattr(args, "ray_host", None))


def run_sweep(requests: list, opts: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Build the job graph of `requests`; print its plan (--plan) or run it; the rows they cover."""
    from ddbench.sweep.build import build_sweep, collect, plan

    executor = executor_for(args)
    sweep = build_sweep(requests, opts, executor.seeds_per_task)
    if args.plan:
        print(plan(sweep, executor.name))
        return []
    summary = None
    if any(not t.done for t in sweep.graph.order()):
        summary = executor.run(sweep)
        log(summary.line())
    rows = [row for req in requests for row in collect(req, opts)]
    if summary is not None and summary.failed:
        if rows:
            print(summary_table(rows))
        summary.raise_if_failed()
    return rows


def import_options(args: argparse.Namespace, dataset: str):
    from ddbench.interop import ImportOptions

    return ImportOptions(format=args.format, dataset=dataset, data_root=args.data_root, lr=args.lr, zca=args.zca,
                         experiment=args.experiment, iteration=args.iteration, normalize=args.normalize,
                         method=args.claim or "")


def distilled(args: argparse.Namespace, cards: list):
    """The set given by --distilled: a ddbench file, or (with --format) a set in another codebase's layout."""
    import dataclasses

    from ddbench.store.distilled import DistilledSet

    if not args.format:
        dset = DistilledSet.load(args.distilled)
        return dataclasses.replace(dset, method=args.claim) if args.claim else dset  # shown as "<claim> (external)"
    from ddbench.interop import import_set

    datasets = {card.dataset for card in cards}
    if len(datasets) != 1:
        raise DDBenchError(f"--format imports the set for one dataset; the cards name {', '.join(sorted(datasets))}")
    dset = import_set(args.distilled, import_options(args, datasets.pop()))
    log(f"imported {args.distilled} ({args.format}): {len(dset.images)} images, {dset.label_mode} labels, "
         f"set id {dset.set_id}; assumptions: {dset.extra['imported']['assumptions']}")
    return dset


def import_formats() -> list[str]:
    """The import formats' names, from their registry (a light module: no torch import here)."""
    from ddbench.interop.formats import FORMATS

    return FORMATS.names()


def executors() -> list[str]:
    from ddbench.sweep.registry import EXECUTORS

    return EXECUTORS.names()


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--data-root", help="where datasets live (default: $DDBENCH_DATA or ~/.cache/ddbench/data)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_scale(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=executors(), default="local",
                   help="run the job graph in this process (default) or on Ray (pip install -e '.[ray]')")
    p.add_argument("--address", help="Ray: an existing cluster's HOST:PORT (default: start a local instance)")
    p.add_argument("--ray-host", help="Ray, local instance: the IP address it binds to (default Ray's choice)")
    p.add_argument("--workers", type=int, help="Ray, local instance: tasks at once (default: CPUs / threads per task)")
    p.add_argument("--threads-per-task", type=int, help="CPU threads per task (Ray default 1; local: torch's default)")
    p.add_argument("--plan", action="store_true", help="print the job graph (tasks per stage, cached, estimated "
                                                       "device-hours) and stop")


def add_import_flags(p: argparse.ArgumentParser, with_dataset: bool) -> None:
    p.add_argument("--format", choices=import_formats(), required=with_dataset,
                   help="the source layout (see README, 'Evaluate a set made elsewhere')")
    if with_dataset:
        p.add_argument("--dataset", required=True, help="the dataset the set was distilled from")
    p.add_argument("--lr", help="the learned lr (MTT never saves it), or 'card' for the card's lr")
    p.add_argument("--zca", action="store_true", help="the images are in ZCA space (the source ran with --zca)")
    p.add_argument("--experiment", type=int, default=0, help="dc: which experiment of the result file (default 0)")
    p.add_argument("--iteration", help="mtt/datm/mkdt: read images_<ITERATION>.pt (default: _best, else the last)")
    p.add_argument("--normalize", help="override the format's normalisation preset: mtt, dc, mkdt, dataset, pixels, "
                                       "or MEAN,...:STD,...")
    p.add_argument("--claim", help="the method name the set claims (default: the format's name); shown as external")
