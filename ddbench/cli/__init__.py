"""The `ddbench` command: argument parsing and error presentation only; the work lives in the library."""
from __future__ import annotations

import argparse
import fnmatch
import logging
import os
import sys
from typing import Any, Sequence

from ddbench.core.errors import DDBenchError

QUICK_NOTE = ("no --protocol given: running the method's quick card 'digits-quick' (scikit-learn's 8×8 digits; "
              "a smoke test, not a leaderboard protocol)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise DDBenchError(f"{message} (see `{self.prog} --help`)")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _StderrHandler(logging.Handler):
    """The library's log records on the current stderr: progress notes plain, warnings marked."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            message = f"ddbench: warning: {message}"
        print(message, file=sys.stderr, flush=True)


def _setup_logging() -> None:
    logger = logging.getLogger("ddbench")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.DEBUG if os.environ.get("DDBENCH_DEBUG") else logging.INFO)


def _parse_cfg(items: Sequence[str] | None) -> dict[str, str]:
    cfg = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DDBenchError(f"--cfg takes KEY=VALUE, got '{item}'")
        cfg[key.strip()] = value.strip()
    return cfg


def _protocols(names: Sequence[str] | None) -> list:
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


def _check_bounds(args: argparse.Namespace) -> None:
    from ddbench.cards.card import MAX_EPOCHS, MAX_SEEDS

    if args.seeds is not None and not 1 <= args.seeds <= MAX_SEEDS:
        raise DDBenchError(f"--seeds must be 1..{MAX_SEEDS}, got {args.seeds}")
    if args.epochs is not None and not 0 <= args.epochs <= MAX_EPOCHS:
        raise DDBenchError(f"--epochs must be 0..{MAX_EPOCHS}, got {args.epochs}")


def _options(args: argparse.Namespace):
    from ddbench.core.paths import default_results_dir
    from ddbench.core.provenance import pick_device
    from ddbench.models import expand_archs
    from ddbench.store.results import ResultStore
    from ddbench.sweep.evaluate import EvalOptions

    device = pick_device(args.device)  # precision (TF32 or not) is the card's, set by the engine
    return EvalOptions(
        device=device, store=ResultStore(args.results or default_results_dir()), data_root=args.data_root,
        archs=expand_archs(args.arch) if args.arch else None, seeds=args.seeds, mode=args.batch_mode,
        progress=not args.no_progress,
    )


def _summary(rows: list[dict[str, Any]]) -> str:
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


def _methods(text: str | None, cfg: dict[str, str]) -> list:
    """--method NAME or a comma list. --cfg KEY=VALUE goes to every method, --cfg METHOD.KEY=VALUE to one."""
    from ddbench.distill.registry import create_method

    names = [n.strip().lower() for n in (text or "").split(",") if n.strip()]
    scoped = {k for k in cfg if "." in k and k.split(".", 1)[0] in names}
    unknown = sorted(k.split(".", 1)[0] for k in cfg if "." in k and k not in scoped)
    if unknown:
        raise DDBenchError(f"--cfg {unknown[0]}.KEY=VALUE names a method not given to --method ({', '.join(names)})")
    shared = {k: v for k, v in cfg.items() if k not in scoped}
    return [create_method(name, **shared, **{k.split(".", 1)[1]: v for k, v in cfg.items()
                                             if k in scoped and k.split(".", 1)[0] == name}) for name in names]


def _executor(args: argparse.Namespace):
    from ddbench.sweep.executors import make_executor

    if args.workers is not None and args.workers < 1:
        raise DDBenchError(f"--workers must be 1 or more, got {args.workers}")
    if args.threads_per_task is not None and args.threads_per_task < 1:
        raise DDBenchError(f"--threads-per-task must be 1 or more, got {args.threads_per_task}")
    return make_executor(args.executor, args.address, args.workers, args.threads_per_task)


def _run_sweep(requests: list, opts: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Build the job graph of `requests`; print its plan (--plan) or run it; the rows they cover."""
    from ddbench.sweep.build import build_sweep, collect, plan

    executor = _executor(args)
    sweep = build_sweep(requests, opts, executor.seeds_per_task)
    if args.plan:
        print(plan(sweep, executor.name))
        return []
    summary = None
    if any(not t.done for t in sweep.graph.order()):
        summary = executor.run(sweep)
        _log(summary.line())
    rows = [row for req in requests for row in collect(req, opts)]
    if summary is not None and summary.failed:
        if rows:
            print(_summary(rows))
        summary.raise_if_failed()
    return rows


IMPORT_FORMATS = ("mtt", "datm", "dc", "mkdt", "tensors", "folder")  # = ddbench.interop.FORMATS (tested); no torch import here


def _import_options(args: argparse.Namespace, dataset: str):
    from ddbench.interop import ImportOptions

    return ImportOptions(format=args.format, dataset=dataset, data_root=args.data_root, lr=args.lr, zca=args.zca,
                         experiment=args.experiment, iteration=args.iteration, normalize=args.normalize,
                         method=args.claim or "")


def _distilled(args: argparse.Namespace, cards: list):
    """The set given by --distilled: a ddbench file, or (with --format) a set in another codebase's layout."""
    from ddbench.store.distilled import DistilledSet

    if not args.format:
        return DistilledSet.load(args.distilled)
    from ddbench.interop import import_set

    datasets = {card.dataset for card in cards}
    if len(datasets) != 1:
        raise DDBenchError(f"--format imports the set for one dataset; the cards name {', '.join(sorted(datasets))}")
    dset = import_set(args.distilled, _import_options(args, datasets.pop()))
    _log(f"imported {args.distilled} ({args.format}): {len(dset.images)} images, {dset.label_mode} labels, "
         f"set id {dset.set_id}; assumptions: {dset.extra['imported']['assumptions']}")
    return dset


def cmd_import(args: argparse.Namespace) -> int:
    from ddbench.interop import import_set

    dset = import_set(args.src, _import_options(args, args.dataset))
    path = dset.save(args.out)
    print(f"wrote {path}: {len(dset.images)} images {'×'.join(map(str, dset.image_shape))}, {dset.label_mode} labels, "
          f"set id {dset.set_id}")
    for key, value in dset.extra["imported"]["assumptions"].items():
        print(f"  assumed {key}: {value}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ddbench.interop import export_set
    from ddbench.store.distilled import DistilledSet

    written = export_set(DistilledSet.load(args.set), args.format, args.out)
    print(f"wrote {len(written)} file(s) under {args.out}")
    return 0


def cmd_robustness(args: argparse.Namespace) -> int:
    """DD-Ranking's label- and augmentation-robust scores of a method or a set under one card."""
    from tabulate import tabulate

    from ddbench.distill.registry import create_method
    from ddbench.sweep.robustness import robustness_rows

    if bool(args.method) == bool(args.distilled):
        raise DDBenchError("robustness takes exactly one of --method NAME or --distilled PATH")
    (card,) = _protocols([args.protocol])
    card = card.with_overrides(epochs=args.epochs)
    opts = _options(args)
    opts.external = bool(args.distilled)
    subject = _distilled(args, [card]) if args.distilled else create_method(args.method, **_parse_cfg(args.cfg))
    rows = robustness_rows(subject, card, opts)
    table = [[r["arch"], r["seed"], f"{r['accuracy']:.2f}", f"{r['ior']:+.4f}", f"{r['hlr']:+.4f}", f"{r['lrs']:.4f}",
              f"{r['gain_aug']:+.4f}", f"{r['gain_plain']:+.4f}", f"{r['ars']:.4f}"] for r in rows]
    print(tabulate(table, headers=["arch", "seed", "acc %", "IOR", "HLR", "LRS", "Δ aug", "Δ no aug", "ARS"], tablefmt="github"))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ddbench.distill.registry import create_method
    from ddbench.kinds import load_protocol
    from ddbench.sweep.build import Request

    if bool(args.method) == bool(args.distilled):
        raise DDBenchError("evaluate takes exactly one of --method NAME or --distilled PATH")
    _check_bounds(args)
    cfg = _parse_cfg(args.cfg)
    if args.teacher:
        cfg["teacher"] = args.teacher
    methods = _methods(args.method, cfg) if args.method else []
    if args.method and not methods:
        raise DDBenchError("--method needs a name (see `ddbench list methods`)")
    cards = _protocols(args.protocol)
    if not cards:
        if args.distilled:
            raise DDBenchError("--distilled needs --protocol: the card the set is evaluated under")
        quick = load_protocol(type(methods[0]).quick_card)
        _log(QUICK_NOTE.replace("digits-quick", quick.id))
        cards = [quick]
    cards = [card.with_overrides(epochs=args.epochs, precision=args.precision if args.precision != card.precision else None)
             for card in cards]
    dset = _distilled(args, cards) if args.distilled else None
    opts = _options(args)
    opts.external = dset is not None  # a set from a file: its method name is a claim
    _log(f"device: {opts.device}; results: {opts.store.path}")
    requests: list[Request] = []
    for card in cards:
        if card.overrides:
            _log(f"{card.id}: recipe changed by flag ({card.overrides}); rows are marked non-standard and kept off the leaderboard")
        if dset is not None:
            requests.append(Request(card, dset=dset, external=True))
        requests += [Request(card, method=m) for m in methods]
        names = {m.name for m in methods}
        extra = list(card.param("baselines", ())) if methods and not args.no_baselines and not names & set(card.param("baselines", ())) else []
        if extra:
            _log(f"{card.id}: evaluating the card's baselines ({', '.join(extra)}) beside {', '.join(sorted(names))}")
            requests += [Request(card, method=create_method(n)) for n in extra]  # --cfg applies to the methods only
    rows = _run_sweep(requests, opts, args)
    if not args.plan:
        print(_summary(rows))
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from ddbench.core.paths import atomic_write, user_cache_root
    from ddbench.core.provenance import pick_device
    from ddbench.distill.registry import create_method
    from ddbench.kinds import load_protocol
    from ddbench.store.distilled import DistilledSet
    from ddbench.sweep.build import build_distill_sweep, plan
    from ddbench.sweep.evaluate import EvalOptions, set_cache_path, snapshot_path

    card = load_protocol(args.protocol)
    method = create_method(args.method, **_parse_cfg(args.cfg))
    snapshots = _parse_snapshots(args.snapshots)
    opts = EvalOptions(device=pick_device(args.device), store=None, data_root=args.data_root,
                       progress=not args.no_progress, snapshots=snapshots, cache_dir=user_cache_root())
    executor = _executor(args)
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
    if any(step <= 0 for step in steps):
        raise DDBenchError(f"--snapshots takes positive step counts, not {text!r}")
    return tuple(steps)


def cmd_list(args: argparse.Namespace) -> int:
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
            print("\n`ddbench list methods NAME` shows a method's options.")
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


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from ddbench.core.paths import default_results_dir
    from ddbench.publish.leaderboard import publish, render
    from ddbench.store.results import ResultStore

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


def cmd_results(args: argparse.Namespace) -> int:
    from ddbench.core.paths import default_results_dir
    from ddbench.store.results import ResultStore, merge_stores

    into = ResultStore(args.into or default_results_dir())
    written, conflicts = merge_stores([ResultStore(s) for s in args.stores], into)
    for line in conflicts:
        _log(f"ddbench: {line}")
    print(f"merged {len(args.stores)} store(s) into {into.path}: {written} new row(s), {len(conflicts)} conflict(s)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ddbench.core.paths import default_results_dir
    from ddbench.core.provenance import pick_device
    from ddbench.store.results import ResultStore
    from ddbench.sweep.verify import pick_row, verify_row

    store = ResultStore(args.results or default_results_dir())
    if not store.path.is_file():
        raise DDBenchError(f"no result store at {store.path}; pass --results DIR")
    row = pick_row(store, args.protocol, args.method, args.seed)
    verdict = verify_row(row, pick_device(args.device), args.data_root, args.distilled)
    print(verdict.line())
    return 0 if verdict.reproduced else 1


def cmd_data(args: argparse.Namespace) -> int:
    from ddbench.core.paths import resolve_data_root
    from ddbench.data import dataset_status, list_datasets, prepare_dataset

    if args.action == "list":
        args.what, args.pattern = "datasets", None
        print(f"data root: {resolve_data_root(args.data_root)}")
        return cmd_list(args)
    if not args.name:
        raise DDBenchError(f"data prepare needs a dataset name: one of {', '.join(list_datasets())}")
    ds = prepare_dataset(args.name, args.data_root)
    st = dataset_status(ds.name, args.data_root)
    shape = f"{ds.channels}×{ds.image_size[0]}×{ds.image_size[1]}"
    print(f"{ds.name}: {len(ds.x_train)} train / {len(ds.x_test)} test images, {shape}, {ds.num_classes} classes, "
          f"from {st['where']} (cached)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ddbench", description="Benchmark and leaderboard for dataset distillation.")
    from ddbench import __version__

    parser.add_argument("--version", action="version", version=f"ddbench {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
        p.add_argument("--data-root", help="where datasets live (default: $DDBENCH_DATA or ~/.cache/ddbench/data)")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")

    def scale(p: argparse.ArgumentParser) -> None:
        p.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="run the job graph in this process (default) or on Ray (pip install -e '.[ray]')")
        p.add_argument("--address", help="Ray: an existing cluster's HOST:PORT (default: start a local instance)")
        p.add_argument("--workers", type=int, help="Ray, local instance: tasks at once (default: CPUs / threads per task)")
        p.add_argument("--threads-per-task", type=int, help="CPU threads per task (Ray default 1; local: torch's default)")
        p.add_argument("--plan", action="store_true", help="print the job graph (tasks per stage, cached, estimated "
                                                           "device-hours) and stop")

    def import_flags(p: argparse.ArgumentParser, with_dataset: bool) -> None:
        p.add_argument("--format", choices=IMPORT_FORMATS, required=with_dataset,
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

    ev = sub.add_parser("evaluate", help="evaluate a method or a distilled set under protocol cards")
    ev.add_argument("--method", help="registered method name(s), comma-separated (see `ddbench list methods`)")
    ev.add_argument("--distilled", help="path to a distilled set (.safetensors), or with --format a set in another "
                                        "codebase's layout (imported on the fly)")
    ev.add_argument("--protocol", nargs="+", help="card id(s), wildcards or .toml paths (default: the quick digits card)")
    ev.add_argument("--arch", action="append", help="architecture(s); comma lists and wildcards (default: the card's)")
    ev.add_argument("--seeds", type=int, help="number of evaluation seeds, 0..N-1 (default: the card's)")
    ev.add_argument("--epochs", type=int, help="shorter recipe for quick checks; rows are marked non-standard")
    ev.add_argument("--cfg", action="append", metavar="KEY=VALUE",
                    help="method option (repeatable); METHOD.KEY=VALUE for one of several methods")
    ev.add_argument("--results", help="result store directory (default: $DDBENCH_RESULTS, else a per-user store, "
                                      "~/.local/share/ddbench/results; name leaderboard/ to publish)")
    ev.add_argument("--no-baselines", action="store_true", help="skip the baselines an ssl-transfer card lists")
    ev.add_argument("--teacher", help="MKDT: a teacher checkpoint (ResNet-18 state dict) instead of training one")
    ev.add_argument("--precision", choices=("fp32", "tf32", "bf16"),
                    help="override the card's precision (rows are then non-standard; bf16: autocast in evaluation)")
    ev.add_argument("--batch-mode", choices=("auto", "loop", "vmap"), default="auto",
                    help="train seeds one by one, stacked with vmap, or pick the faster by timing (default)")
    import_flags(ev, with_dataset=False)
    common(ev)
    scale(ev)
    ev.set_defaults(func=cmd_evaluate)

    rb = sub.add_parser("robustness", help="DD-Ranking's label- and augmentation-robust scores (as rows and leaderboard columns)")
    rb.add_argument("--method", help="a registered method")
    rb.add_argument("--distilled", help="a set file (with --format: another codebase's layout)")
    rb.add_argument("--protocol", required=True, help="one card")
    rb.add_argument("--arch", action="append", help="architecture(s) (default: the card's)")
    rb.add_argument("--seeds", type=int, help="number of seeds (default: the card's)")
    rb.add_argument("--epochs", type=int, help="shorter recipe for quick checks; rows are marked non-standard")
    rb.add_argument("--cfg", action="append", metavar="KEY=VALUE", help="method option (repeatable)")
    rb.add_argument("--results", help="result store directory (default: as evaluate's)")
    rb.add_argument("--batch-mode", choices=("auto", "loop", "vmap"), default="auto")
    import_flags(rb, with_dataset=False)
    common(rb)
    rb.set_defaults(func=cmd_robustness)

    im = sub.add_parser("import", help="convert a set saved by another codebase (MTT, DATM, DC, MKDT, tensors, folder)")
    im.add_argument("src", help="the source file or folder")
    im.add_argument("--out", required=True, help="output ddbench set (.safetensors)")
    import_flags(im, with_dataset=True)
    im.add_argument("--data-root")
    im.set_defaults(func=cmd_import)

    ex = sub.add_parser("export", help="write a ddbench set in another layout (mtt, tensors, folder)")
    ex.add_argument("set", help="a ddbench set (.safetensors)")
    ex.add_argument("--format", required=True, choices=("mtt", "tensors", "folder"))
    ex.add_argument("--out", required=True, help="output folder (tensors: a .pt file or a folder)")
    ex.set_defaults(func=cmd_export)

    di = sub.add_parser("distill", help="distil a set with a method under a card and save it")
    di.add_argument("--method", required=True)
    di.add_argument("--protocol", required=True)
    di.add_argument("--out", required=True, help="output file (.safetensors)")
    di.add_argument("--seed", type=int, default=0)
    di.add_argument("--cfg", action="append", metavar="KEY=VALUE")
    di.add_argument("--snapshots", metavar="N,M,...",
                    help="also write the set after these outer steps (iterations; DD: epochs) as OUT-stepN.safetensors")
    common(di)
    scale(di)
    di.set_defaults(func=cmd_distill)

    ls = sub.add_parser("list", help="list methods, protocols, archs or datasets")
    ls.add_argument("what", choices=("methods", "protocols", "archs", "datasets"))
    ls.add_argument("pattern", nargs="?", help="wildcard filter, e.g. 'cifar10-*'")
    ls.add_argument("--data-root")
    ls.set_defaults(func=cmd_list)

    lb = sub.add_parser("leaderboard", help="publish the result store as markdown tables")
    lb.add_argument("--results", help="result store directory (default: as evaluate's --results)")
    lb.add_argument("--out", help="markdown file (default: <results>/LEADERBOARD.md)")
    lb.add_argument("--print", action="store_true", help="print instead of writing a file")
    lb.add_argument("--html", metavar="DIR", help="also write a static site (index + one page per dataset) into DIR")
    lb.add_argument("--sets", nargs="*", metavar="DIR", help="where to look for the ranked sets' files for the image grids "
                    "(default: the cache's sets/ folder)")
    lb.set_defaults(func=cmd_leaderboard)

    rs = sub.add_parser("results", help="manage result stores")
    rs_sub = rs.add_subparsers(dest="action", parser_class=_Parser, required=True)
    mg = rs_sub.add_parser("merge", help="merge stores from several machines: each row once, conflicts reported")
    mg.add_argument("stores", nargs="+", help="result store directories to merge in")
    mg.add_argument("--into", help="the store to merge into (default: as evaluate's --results)")
    mg.set_defaults(func=cmd_results)

    ve = sub.add_parser("verify", help="re-run one seed of a stored row and report whether it reproduces")
    ve.add_argument("--results", help="result store directory (default: as evaluate's --results)")
    ve.add_argument("--protocol", help="the row's card (default: the first standard row)")
    ve.add_argument("--method", help="the row's method")
    ve.add_argument("--seed", type=int, help="the row's seed")
    ve.add_argument("--distilled", help="the set file, for rows made with evaluate --distilled")
    common(ve)
    ve.set_defaults(func=cmd_verify)

    da = sub.add_parser("data", help="list datasets or prepare (download + convert) one")
    da.add_argument("action", choices=("list", "prepare"))
    da.add_argument("name", nargs="?")
    da.add_argument("--data-root")
    da.set_defaults(func=cmd_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _setup_logging()
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except DDBenchError as exc:
        print(f"ddbench: error: {exc}", file=sys.stderr)
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
