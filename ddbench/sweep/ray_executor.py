"""Run a sweep's job graph on Ray: a local instance, or an existing cluster (`--address`).

Every task is a Ray task asking for `threads_per_task` CPUs (and, with `--device cuda`, a share of a GPU: a
quarter for an evaluation, a whole one for the rest; the worker decides its device, so a CPU-only head can drive GPU
workers). The driver submits a task once its dependencies are done (a heap by stage, at most a window of tasks in
flight, each finished task releasing its dependants in O(its edges)) and is the only writer: result rows come back
to it and go into its store. Large inputs go into the object store once: each dataset is one object that a worker
reads only if its task touches it (and keeps for its next tasks); files a task makes (a ZCA, expert trajectories,
teachers, sets) come back to the driver's cache, and each file is one object that a node fetches only if its cache
lacks it, under a lock, so no file crosses to a node twice; the driver drops each file's object once every task
that needs it has finished. When every node sees the driver's cache directory (a shared DDBENCH_CACHE, or one
machine) nothing is copied. A task running longer than HEARTBEAT_S prints a line every HEARTBEAT_S.

Faults: a worker that dies mid-task is retried by Ray (`max_retries`); its rows are written only
when a try succeeds, so none is lost or written twice. A task that fails on its own stops its
dependants (one line each) and the rest go on. A driver killed mid-sweep loses nothing stored:
the same command resumes from the store and the caches.
"""
from __future__ import annotations

import contextlib
import fcntl
import heapq
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ddbench.core import clock
from ddbench.core.errors import DDBenchError
from ddbench.core.paths import atomic_write, user_cache_root
from ddbench.engine.allocator import tune_cpu_allocator
from ddbench.sweep.build import Sweep
from ddbench.sweep.executors import Summary, block_dependants, record_failure
from ddbench.sweep.graph import STAGES, Task, Workspace

log = logging.getLogger(__name__)

RAY_INSTALL = "pip install -e '.[ray]' (in a checkout) or pip install 'ddbench[ray]'"
SHARE_MARKER = ".ddbench-share-{token}"
PRIVATE_CACHE_ENV = "DDBENCH_PRIVATE_CACHE"
CONNECT_TIMEOUT_S = 3.0
HEARTBEAT_S = 60.0
NODE_CHECK_S = 10.0  # how often the driver looks for nodes that joined (and whether they see its cache)
MAX_IN_FLIGHT = 1000  # tasks submitted and not yet finished, whatever the cluster's size
STALE_S = 24 * 3600  # share markers and .part files older than this are left over from a dead run


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

    device: str  # "cpu" or "cuda": what the sweep asks for; the worker uses CUDA only where Ray gave it a GPU
    driver_cache: str
    token: str
    threads: int
    mode: str


@dataclass
class TaskOutput:
    rows: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # cache-relative path -> content (unshared caches only)
    host: str = ""
    seconds: float = 0.0
    fetched: list[str] = field(default_factory=list)  # the input files this task had to fetch to its node


Manifest = dict[str, tuple[int, Any]]  # cache-relative path -> (size, the object holding its bytes)


def worker_cache(spec: WorkerSpec) -> tuple[Path, bool]:
    """(the cache this worker uses, whether it is the driver's own). A node started with
    DDBENCH_PRIVATE_CACHE=1 keeps its own cache even where it can see the driver's."""
    driver = Path(spec.driver_cache)
    if os.environ.get(PRIVATE_CACHE_ENV) != "1" and (driver / SHARE_MARKER.format(token=spec.token)).is_file():
        return driver, True
    return user_cache_root(), False


@contextlib.contextmanager
def _node_lock(cache: Path) -> Iterator[None]:
    """One task of a node at a time places files into its cache (so a file is fetched to a node once)."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".ddbench-fetch.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _place(cache: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = cache / rel
        if not path.is_file() or path.stat().st_size != len(data):
            with atomic_write(path) as handle:
                handle.write(data)


def _fetch_missing(cache: Path, manifest: Manifest) -> list[str]:
    """Fetch from the object store only the files this node's cache lacks; their paths."""
    import ray

    fetched = []
    with _node_lock(cache):
        for rel, (size, ref) in manifest.items():
            path = cache / rel
            if path.is_file() and path.stat().st_size == size:
                continue
            _place(cache, {rel: ray.get(ref)})
            fetched.append(rel)
    return fetched


_DATASETS: dict[str, Any] = {}  # object id -> dataset, kept by a worker process for its next tasks


class LazyDatasets(Mapping):
    """A worker's view of the sweep's datasets: each is read from the object store on first use only."""

    def __init__(self, refs: dict[str, Any]) -> None:
        self.refs = refs

    def __getitem__(self, name: str) -> Any:
        ref = self.refs[name]
        key = ref.hex()
        if key not in _DATASETS:
            import ray

            _DATASETS[key] = ray.get(ref)
        return _DATASETS[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.refs)

    def __len__(self) -> int:
        return len(self.refs)


def _task_device(spec: WorkerSpec) -> torch.device:
    """CUDA where the sweep asks for it and Ray gave this task a GPU (decided on the worker, not the head)."""
    if spec.device == "cuda" and torch.cuda.is_available():
        return torch.device("cuda")
    if spec.device == "cuda":
        raise DDBenchError(f"--device cuda, but this worker ({socket.gethostname()}) sees no GPU")
    return torch.device("cpu")


def run_task(task: Task, spec: WorkerSpec, payload: dict[str, Any]) -> TaskOutput:
    """A task on a worker: fetch the inputs its node lacks, run it, return its rows (and files). `payload` holds
    {"datasets": name -> object, "files": Manifest}; nested, so that Ray moves none of them unless asked."""
    tune_cpu_allocator()
    torch.set_num_threads(spec.threads)
    cache, shared = worker_cache(spec)
    fetched = [] if shared else _fetch_missing(cache, payload["files"])
    rows: list[dict[str, Any]] = []
    ws = Workspace(_task_device(spec), cache, LazyDatasets(payload["datasets"]), spec.mode, progress=False)
    start = clock.now()
    task.action.run(ws, rows.extend)
    seconds = clock.now() - start
    files = {} if shared else {str(p.relative_to(cache)): p.read_bytes() for p in task.action.outputs(cache)}
    return TaskOutput(rows, files, _where(), seconds, fetched)


def _where() -> str:
    """This worker's host and Ray node (short id)."""
    import ray

    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"


def _node_shares(spec: WorkerSpec) -> tuple[str, bool]:
    return _where(), worker_cache(spec)[1]


def clean_stale(cache: Path, now: float | None = None) -> int:
    """Remove share markers and `.part` files that a run killed long ago left in the cache; how many."""
    now = now or time.time()
    removed = 0
    if not cache.is_dir():
        return 0
    for path in [*cache.glob(SHARE_MARKER.format(token="*")), *cache.rglob("*.part")]:
        try:
            if path.is_file() and now - path.stat().st_mtime > STALE_S:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


@contextlib.contextmanager
def _quiet_stdio(log_file: Path) -> Iterator[None]:
    """Ray's own start-up output (file descriptors 1 and 2, and Python's sys.stdout / sys.stderr) into `log_file`,
    not the user's terminal."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with open(log_file, "a", buffering=1) as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                yield
        finally:
            sink.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def explain_start_failure(exc: BaseException, address: str | None, log_file: Path) -> str:
    """One line for a failed ray.init: a missing or wrong token named as such, the log file for the rest."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    where = f"connect to Ray at {address}" if address else "start a local Ray instance"
    if "token" in text.lower() or "auth" in text.lower() or (os.environ.get("RAY_AUTH_MODE") == "token"
                                                             and not os.environ.get("RAY_AUTH_TOKEN")
                                                             and not os.environ.get("RAY_AUTH_TOKEN_PATH")
                                                             and not (Path.home() / ".ray" / "auth_token").is_file()):
        return (f"could not {where}: the cluster wants an authentication token (RAY_AUTH_MODE=token) and none was "
                f"given or it was refused; set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH (Ray's log: {log_file})")
    return f"could not {where}: {first[:200]} (Ray's log: {log_file})"


class RayExecutor:
    """The graph on Ray. `workers`: CPUs of a local instance, in tasks (ignored with an address); `host`: the
    address a local instance binds to (default Ray's)."""

    name = "ray"
    seeds_per_task = 1  # one evaluation seed per task: as many tasks in flight as the cluster has room for

    @classmethod
    def from_options(cls, address: str | None = None, workers: int | None = None,
                     threads_per_task: int | None = None, host: str | None = None) -> "RayExecutor":
        return cls(address=address, workers=workers, threads_per_task=threads_per_task or 1, host=host)

    def __init__(self, address: str | None = None, workers: int | None = None, threads_per_task: int = 1,
                 max_retries: int = 3, host: str | None = None, max_in_flight: int | None = None) -> None:
        self.address, self.workers, self.threads, self.max_retries = address, workers, max(1, threads_per_task), max_retries
        self.host, self.max_in_flight = host, max_in_flight
        self.transfers: list[tuple[str, str]] = []  # (node, file) for every file a worker fetched, in this run
        self.ray = import_ray()
        if address:
            check_address(address)

    def _connect(self, log_file: Path) -> bool:
        """Connect (or start a local instance); True when this call started Ray and must stop it."""
        ray = self.ray
        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        try:
            with _quiet_stdio(log_file):
                if self.address:
                    ray.init(address=self.address, **kwargs)
                else:
                    cpus = (self.workers or max(1, (os.cpu_count() or 1) // self.threads)) * self.threads
                    if self.host:
                        kwargs["_node_ip_address"] = self.host
                    ray.init(num_cpus=cpus, include_dashboard=False, **kwargs)
        except Exception as exc:  # Ray's own errors name the cause; one line of it, the rest in the log file
            with contextlib.suppress(Exception):
                ray.shutdown()
            raise DDBenchError(explain_start_failure(exc, self.address, log_file)) from None
        return True

    def run(self, sweep: Sweep) -> Summary:
        ray, opts = self.ray, sweep.opts
        cache = Path(opts.cache_dir)
        removed = clean_stale(cache)
        if removed:
            log.info(f"ray: removed {removed} stale marker(s) and .part file(s) from {cache}")
        log_file = cache / "ray" / "ray.log"
        started = self._connect(log_file)
        summary = Summary()
        start = clock.now()
        token = secrets.token_hex(8)
        marker = cache / SHARE_MARKER.format(token=token)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        try:
            spec = WorkerSpec("cuda" if opts.device.type == "cuda" else "cpu", str(cache), token, self.threads, opts.mode)
            shared = self._all_nodes_share(spec)
            log.info(f"ray: {int(ray.cluster_resources().get('CPU', 0))} CPU(s) on {len(ray.nodes())} node(s); "
                     f"cache {'shared with' if shared else 'copied to and from'} the workers; Ray's log: {log_file}")
            self._drive(sweep, spec, shared, summary)
        finally:
            marker.unlink(missing_ok=True)
            if started:
                ray.shutdown()
        summary.seconds = clock.now() - start
        return summary

    def _all_nodes_share(self, spec: WorkerSpec) -> bool:
        ray = self.ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = ray.remote(_node_shares)
        refs = [probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                .remote(spec) for node in ray.nodes() if node.get("Alive")]
        return all(shares for _, shares in ray.get(refs))

    def _window(self) -> int:
        if self.max_in_flight:
            return self.max_in_flight
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        return max(8, min(MAX_IN_FLIGHT, 2 * cpus // self.threads))

    def _drive(self, sweep: Sweep, spec: WorkerSpec, shared: bool, summary: Summary) -> None:
        ray, opts, graph = self.ray, sweep.opts, sweep.graph
        cache = Path(opts.cache_dir)
        remote = ray.remote(run_task)
        datasets = {name: ray.put(data) for name, data in sweep.datasets.items()}  # one object per dataset
        todo = [t for t in graph.order() if not t.done]
        summary.cached = len(graph.tasks) - len(todo)
        pending = {t.key: sum(1 for d in t.deps if not graph.tasks[d].done) for t in todo}
        dependants: dict[str, list[str]] = {}
        for t in todo:
            for d in t.deps:
                dependants.setdefault(d, []).append(t.key)
        users = {key: len(keys) for key, keys in dependants.items()}  # tasks still to read each task's files
        files: dict[str, Manifest] = {}  # task key -> its output files as objects (unshared caches only)
        order = {t.key: i for i, t in enumerate(todo)}
        rank = {s: i for i, s in enumerate(STAGES)}
        ready = [(rank.get(t.stage, len(STAGES)), order[t.key], t.key) for t in todo if pending[t.key] == 0]
        heapq.heapify(ready)  # the long chains first (a ZCA, a teacher, experts, distillations); evaluations fill gaps
        blocked: set[str] = set()
        running: dict[Any, tuple[Task, float, float]] = {}  # ref -> (task, submitted at, last heartbeat)
        window, count = self._window(), 0
        nodes = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
        checked = time.monotonic()

        def recheck_nodes() -> None:  # a node that joins later without the shared cache gets its files sent
            nonlocal shared, nodes, checked
            if not shared or time.monotonic() - checked < NODE_CHECK_S:
                return
            checked = time.monotonic()
            alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
            if alive - nodes and not self._all_nodes_share(spec):
                shared = False
                log.info("ray: a node joined that does not see the driver's cache; its tasks now receive their files")
            nodes = alive

        def manifest(key: str) -> Manifest:
            if key not in files:  # made before this run: its files from the driver's cache
                task = graph.tasks[key]
                files[key] = {str(p.relative_to(cache)): (p.stat().st_size, ray.put(p.read_bytes()))
                              for p in task.action.outputs(cache)}
            return files[key]

        def release(key: str) -> None:
            for dep in graph.tasks[key].deps:
                if dep in users:
                    users[dep] -= 1
                    if users[dep] == 0:
                        files.pop(dep, None)  # no task left needs these objects: Ray frees them

        def submit() -> None:
            recheck_nodes()
            while ready and len(running) < window:
                _, _, key = heapq.heappop(ready)
                if key in blocked:
                    continue
                task = graph.tasks[key]
                inputs: Manifest = {} if shared else {rel: f for d in task.deps for rel, f in manifest(d).items()}
                gpus = task.gpus if spec.device == "cuda" else 0
                ref = remote.options(name=f"ddbench_{task.stage}", num_cpus=self.threads, num_gpus=gpus,
                                     max_retries=self.max_retries, retry_exceptions=False
                                     ).remote(task, spec, {"datasets": datasets, "files": inputs})
                now = time.monotonic()
                running[ref] = (task, now, now)

        def heartbeat() -> None:
            now = time.monotonic()
            for ref, (task, began, last) in list(running.items()):
                if now - last >= HEARTBEAT_S:
                    log.info(f"  still running after {now - began:.0f} s: {task.stage} {task.label}")
                    running[ref] = (task, began, now)

        submit()
        while running:
            done_refs, _ = ray.wait(list(running), num_returns=1, timeout=HEARTBEAT_S / 4)
            if not done_refs:
                heartbeat()
                continue
            ref = done_refs[0]
            task, _, _ = running.pop(ref)
            count += 1
            try:
                out: TaskOutput = ray.get(ref)
            except Exception as exc:  # the task's own error, or its worker died past the retries
                cause = getattr(exc, "cause", None) or exc
                log.info(f"  failed: {record_failure(summary, task, cause)}")
                block_dependants(graph, task, summary, blocked)
                release(task.key)
                submit()
                continue
            del ref  # the driver keeps no finished task's output
            _place(cache, out.files)
            if out.files and users.get(task.key):
                files[task.key] = {rel: (len(data), ray.put(data)) for rel, data in out.files.items()}
            self.transfers += [(out.host.split("/")[-1], rel) for rel in out.fetched]
            summary.rows += opts.store.append(out.rows)
            summary.task_seconds += out.seconds
            summary.done += 1
            release(task.key)
            for key in dependants.get(task.key, ()):
                pending[key] -= 1
                if pending[key] == 0 and key not in blocked:
                    t = graph.tasks[key]
                    heapq.heappush(ready, (rank.get(t.stage, len(STAGES)), order[key], key))
            accs = [f"{r['accuracy']:.2f}%" for r in out.rows if "accuracy" in r][:4]
            log.info(f"[{count}/{len(todo)}] {task.stage}: {task.label} on {out.host} in {out.seconds:.1f} s"
                     + (f" ({', '.join(accs)})" if accs else ""))
            submit()
        if self.transfers:
            log.info(f"ray: {len(self.transfers)} file(s) fetched by worker nodes "
                     f"({len(set(self.transfers))} distinct node-file pairs)")
