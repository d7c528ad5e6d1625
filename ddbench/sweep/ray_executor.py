"""Run a sweep's job graph on Ray: a local instance, or an existing cluster (`--address`).

Every task is a Ray task asking for `threads_per_task` CPUs (and, on GPUs, a share of one: a
quarter for an evaluation, a whole one for the rest). The driver submits a task once its
dependencies are done and is the only writer: result rows come back to it and go into its store;
files a task makes (expert trajectories, teachers, sets) come back through Ray's object store and
land in the driver's cache, and travel to the tasks that need them the same way. When every node
sees the driver's cache directory (a shared DDBENCH_CACHE, or one machine) nothing is copied.

Faults: a worker that dies mid-task is retried by Ray (`max_retries`); its rows are written only
when a try succeeds, so none is lost or written twice. A task that fails on its own stops its
dependants (one line each) and the rest go on. A driver killed mid-sweep loses nothing stored:
the same command resumes from the store and the caches.
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ddbench.core.errors import DDBenchError
from ddbench.core.paths import atomic_write, user_cache_root
from ddbench.sweep.build import Sweep
from ddbench.sweep.executors import Summary, block_dependants, record_failure
from ddbench.sweep.graph import STAGES, Task, Workspace

log = logging.getLogger(__name__)

RAY_INSTALL = "pip install -e '.[ray]' (in a checkout) or pip install 'ddbench[ray]'"
SHARE_MARKER = ".ddbench-share-{token}"
PRIVATE_CACHE_ENV = "DDBENCH_PRIVATE_CACHE"
CONNECT_TIMEOUT_S = 3.0


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DDBenchError(f"--executor ray needs Ray, an optional extra: {RAY_INSTALL}") from None
    return ray


def check_address(address: str) -> None:
    """Refuse, within seconds, an address where no Ray cluster answers (one line naming it)."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise DDBenchError(f"--address must be HOST:PORT (e.g. 10.0.0.1:6379) or ray://HOST:PORT, got '{address}'")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DDBenchError(f"no Ray cluster answers at {address} ({reason}); start one with `ray start --head` "
                           "or check the address") from None


@dataclass
class WorkerSpec:
    """What every task takes to its worker besides the task itself."""

    device: str  # "cpu" or "cuda" (Ray sets CUDA_VISIBLE_DEVICES per task)
    driver_cache: str
    token: str
    threads: int
    mode: str


@dataclass
class TaskOutput:
    rows: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # cache-relative path → content (unshared caches only)
    host: str = ""
    seconds: float = 0.0


def worker_cache(spec: WorkerSpec) -> tuple[Path, bool]:
    """(the cache this worker uses, whether it is the driver's own). A node started with
    DDBENCH_PRIVATE_CACHE=1 keeps its own cache even where it can see the driver's."""
    driver = Path(spec.driver_cache)
    if os.environ.get(PRIVATE_CACHE_ENV) != "1" and (driver / SHARE_MARKER.format(token=spec.token)).is_file():
        return driver, True
    return user_cache_root(), False


def _place(cache: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = cache / rel
        if not path.is_file() or path.stat().st_size != len(data):
            with atomic_write(path) as handle:
                handle.write(data)


def run_task(task: Task, spec: WorkerSpec, datasets: dict, *deps: TaskOutput) -> TaskOutput:
    """A task on a worker: put its inputs into the worker's cache, run it, return its rows (and files)."""
    torch.set_num_threads(spec.threads)
    cache, shared = worker_cache(spec)
    for dep in deps:
        _place(cache, dep.files)
    rows: list[dict[str, Any]] = []
    ws = Workspace(torch.device(spec.device), cache, datasets, spec.mode, progress=False)
    start = time.perf_counter()
    task.action.run(ws, rows.extend)
    seconds = time.perf_counter() - start
    files = {} if shared else {str(p.relative_to(cache)): p.read_bytes() for p in task.action.outputs(cache)}
    return TaskOutput(rows, files, _where(), seconds)


def _where() -> str:
    """This worker's host and Ray node (short id)."""
    import ray

    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"


def _node_shares(spec: WorkerSpec) -> tuple[str, bool]:
    return _where(), worker_cache(spec)[1]


class RayExecutor:
    """The graph on Ray. `workers`: CPUs of a local instance, in tasks (ignored with an address)."""

    name = "ray"
    seeds_per_task = 1  # one evaluation seed per task: as many tasks in flight as the cluster has room for

    @classmethod
    def from_options(cls, address: str | None = None, workers: int | None = None,
                     threads_per_task: int | None = None) -> "RayExecutor":
        return cls(address=address, workers=workers, threads_per_task=threads_per_task or 1)

    def __init__(self, address: str | None = None, workers: int | None = None, threads_per_task: int = 1,
                 max_retries: int = 3) -> None:
        self.address, self.workers, self.threads, self.max_retries = address, workers, max(1, threads_per_task), max_retries
        self.ray = import_ray()
        if address:
            check_address(address)

    def _connect(self) -> bool:
        """Connect (or start a local instance); True when this call started Ray and must stop it."""
        ray = self.ray
        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        try:
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                cpus = (self.workers or max(1, (os.cpu_count() or 1) // self.threads)) * self.threads
                ray.init(num_cpus=cpus, include_dashboard=False, **kwargs)
        except Exception as exc:  # Ray's own errors name the cause; one line of it
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DDBenchError(f"could not {'connect to Ray at ' + self.address if self.address else 'start Ray'}: {first}") from None
        return True

    def run(self, sweep: Sweep) -> Summary:
        ray, opts = self.ray, sweep.opts
        started = self._connect()
        summary = Summary()
        start = time.perf_counter()
        token = secrets.token_hex(8)
        marker = Path(opts.cache_dir) / SHARE_MARKER.format(token=token)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        try:
            spec = WorkerSpec("cuda" if opts.device.type == "cuda" else "cpu", str(opts.cache_dir), token, self.threads,
                              opts.mode)
            shared = self._all_nodes_share(spec)
            log.info(f"ray: {int(ray.cluster_resources().get('CPU', 0))} CPU(s) on {len(ray.nodes())} node(s); "
                     f"cache {'shared with' if shared else 'copied to and from'} the workers")
            self._drive(sweep, spec, shared, summary)
        finally:
            marker.unlink(missing_ok=True)
            if started:
                ray.shutdown()
        summary.seconds = time.perf_counter() - start
        return summary

    def _all_nodes_share(self, spec: WorkerSpec) -> bool:
        ray = self.ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = ray.remote(_node_shares)
        refs = [probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                .remote(spec) for node in ray.nodes() if node.get("Alive")]
        return all(shares for _, shares in ray.get(refs))

    def _drive(self, sweep: Sweep, spec: WorkerSpec, shared: bool, summary: Summary) -> None:
        ray, opts, graph = self.ray, sweep.opts, sweep.graph
        remote = ray.remote(run_task)
        data_ref = ray.put(sweep.datasets)
        todo = [t for t in graph.order() if not t.done]
        summary.cached = len(graph.tasks) - len(todo)
        finished: set[str] = {t.key for t in graph.order() if t.done}
        outputs: dict[str, Any] = {}
        blocked: set[str] = set()
        running: dict[Any, Task] = {}
        waiting = list(todo)
        count = 0

        def dep_ref(key: str) -> Any:
            if key not in outputs:  # cached on the driver before this run: send its files unless caches are shared
                files = {} if shared else {str(p.relative_to(opts.cache_dir)): p.read_bytes()
                                           for p in graph.tasks[key].action.outputs(opts.cache_dir)}
                outputs[key] = ray.put(TaskOutput(files=files))
            return outputs[key]

        def submit_ready() -> None:
            # the long chains first (teacher → experts → distillation), so evaluations fill the gaps
            for task in sorted(waiting, key=lambda t: STAGES.index(t.stage) if t.stage in STAGES else len(STAGES)):
                if task.key in blocked:
                    waiting.remove(task)
                elif all(d in finished for d in task.deps):
                    waiting.remove(task)
                    gpus = task.gpus if spec.device == "cuda" else 0
                    ref = remote.options(name=f"ddbench_{task.stage}", num_cpus=self.threads, num_gpus=gpus,
                                         max_retries=self.max_retries, retry_exceptions=False
                                         ).remote(task, spec, data_ref, *[dep_ref(d) for d in task.deps])
                    running[ref] = task
                    outputs[task.key] = ref

        submit_ready()
        while running:
            (ref,), _ = ray.wait(list(running), num_returns=1)
            task = running.pop(ref)
            count += 1
            try:
                out: TaskOutput = ray.get(ref)
            except Exception as exc:  # the task's own error, or its worker died past the retries
                cause = getattr(exc, "cause", None) or exc
                log.info(f"  failed: {record_failure(summary, task, cause)}")
                block_dependants(graph, task, summary, blocked)
                outputs.pop(task.key, None)
                submit_ready()
                continue
            _place(Path(opts.cache_dir), out.files)
            summary.rows += opts.store.append(out.rows)
            summary.task_seconds += out.seconds
            summary.done += 1
            finished.add(task.key)
            accs = [f"{r['accuracy']:.2f}%" for r in out.rows if "accuracy" in r][:4]
            log.info(f"[{count}/{len(todo)}] {task.stage}: {task.label} on {out.host} in {out.seconds:.1f} s"
                     + (f" ({', '.join(accs)})" if accs else ""))
            submit_ready()
