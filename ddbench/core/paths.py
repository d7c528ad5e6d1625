"""Where ddbench reads data and keeps its caches, and how it writes files atomically."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ddbench.core.errors import DDBenchError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _shareable(fd_or_path: int | str | os.PathLike) -> None:
    """Give a temporary file the mode a plain open() would (0666 less the umask), not mkstemp's 0600."""
    mode = 0o666 & ~_umask()
    if isinstance(fd_or_path, int):
        os.fchmod(fd_or_path, mode)
    else:
        os.chmod(fd_or_path, mode)


def user_cache_root() -> Path:
    """The root of ddbench's caches: $DDBENCH_CACHE, else $XDG_CACHE_HOME/ddbench, else ~/.cache/ddbench."""
    if env := os.environ.get("DDBENCH_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "ddbench"


def default_data_root() -> Path:
    """The data root used without --data-root: $DDBENCH_DATA, else <cache root>/data."""
    if env := os.environ.get("DDBENCH_DATA"):
        return Path(env).expanduser()
    return user_cache_root() / "data"


def resolve_data_root(data_root: str | os.PathLike | None) -> Path:
    """The data root as a path; one that exists but is not a directory is refused."""
    root = Path(data_root).expanduser() if data_root else default_data_root()
    if root.exists() and not root.is_dir():
        raise DDBenchError(f"data root {root} is a file, not a directory; pass the folder that holds the datasets")
    return root


def default_results_dir() -> Path:
    """The result store used without --results: $DDBENCH_RESULTS, else a per-user store
    ($XDG_DATA_HOME/ddbench/results, else ~/.local/share/ddbench/results). The repository's committed
    store (leaderboard/) is written only when named, so publishing is deliberate."""
    if env := os.environ.get("DDBENCH_RESULTS"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base).expanduser() / "ddbench" / "results"


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Write to a temporary file beside `path` and rename it into place only on success.

    A crash or an exception leaves either the old file or nothing: never half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    _shareable(fd)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_path(path: str | os.PathLike) -> "_AtomicPath":
    """Like atomic_write, for libraries that want a file name rather than a handle."""
    return _AtomicPath(Path(path))


class _AtomicPath:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".part")
        _shareable(fd)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.tmp is not None
        if exc_type is None:
            _shareable(self.tmp)  # a library may have replaced the file we made
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
