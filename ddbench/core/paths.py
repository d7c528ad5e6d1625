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
        root = Path(env).expanduser()
        if root.exists() and not root.is_dir():
            raise DDBenchError(f"DDBENCH_CACHE={env} is {describe_kind(root)}, not a folder; point it at a folder (or unset it)")
        return root
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


def describe_kind(path: Path) -> str:
    """What is at `path`, in words: a directory, a named pipe, a socket, a device, a symbolic link loop, a file."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        return "a broken or looping symbolic link" if path.is_symlink() else "nothing"
    for test, word in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return word
    return "a file"


def check_input_file(path: str | os.PathLike, what: str = "file") -> Path:
    """Refuse, with one line, an input that is missing, or is not a regular file (a directory, a named pipe that would
    block the read, a socket, a device, a symbolic link loop)."""
    path = Path(path)
    kind = describe_kind(path)
    if kind == "nothing":
        raise DDBenchError(f"{what} {path} does not exist")
    if kind != "a file":
        raise DDBenchError(f"{what} {path} is {kind}, not a regular file")
    return path


def _existing_ancestor(path: Path) -> Path:
    probe = path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def check_output_file(path: str | os.PathLike) -> Path:
    """Refuse, with one line and before any work, an output file path that names a directory, a pipe or another
    non-file, or lies under a file."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise DDBenchError(f"output {path} is {describe_kind(path)}, not a file; give a file path")
    if path.is_symlink() and not path.exists():
        raise DDBenchError(f"output {path} is {describe_kind(path)}")
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise DDBenchError(f"output {path}: {ancestor} is {describe_kind(ancestor)}, not a folder")
    return path


def check_output_dir(path: str | os.PathLike) -> Path:
    """Refuse, with one line and before any work, an output folder path that names a file or lies under one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DDBenchError(f"output folder {path} is {describe_kind(path)}, not a folder")
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise DDBenchError(f"output folder {path}: {ancestor} is {describe_kind(ancestor)}, not a folder")
    return path


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Write to a temporary file beside `path` and rename it into place only on success.

    A crash or an exception leaves either the old file or nothing: never half a file.
    """
    path = check_output_file(path)
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
        check_output_file(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".part")
        _shareable(fd)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.tmp is not None
        if exc_type is None:
            try:
                _shareable(self.tmp)  # a library may have replaced the file we made
                os.replace(self.tmp, self.path)
            except BaseException:
                self.tmp.unlink(missing_ok=True)  # no .part file survives a failure
                raise
        else:
            self.tmp.unlink(missing_ok=True)
