"""The append-only JSONL result store: one row per (run, protocol, arch, seed).

Appends are atomic: each row is one complete line written by a single write() on a file opened
with O_APPEND, under an exclusive lock, then fsync'd. A reader skips a damaged last line (a
crash mid-write on a dying disk), so the store always parses; it also skips, and reports once, a
poisoned line: over the size or nesting bound, not JSON, or a row whose key and values do not
have the schema's types. A rerun skips rows already present, so an interrupted sweep resumes
where it stopped. A merge is all or nothing: the merged store is written beside the old one and
renamed into place. The store file is never written through a symbolic link.
"""
from __future__ import annotations

import fcntl
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterable

from ddbench.core.errors import DDBenchError
from ddbench.core.paths import atomic_write
from ddbench.store.rows import (  # noqa: F401  (REQUIRED_FIELDS, ROW_SCHEMA, Row: part of this module's interface)
    KEY_FIELDS,
    OPTIONAL_KEY_FIELDS,
    REQUIRED_FIELDS,
    ROW_SCHEMA,
    Row,
    json_safe,
    record_type,
    required_fields,
    row_key,
)

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 1 << 20  # a row is provenance and a few numbers; a longer line is not a row
MAX_DEPTH = 20  # rows nest a dict or two (method_config, set_storage); deeper is hostile
_KEY_TYPES = {"run_id": str, "protocol": str, "protocol_hash": str, "arch": str, "seed": int}


def _nesting(line: bytes) -> int:
    """The bracket depth of a raw JSON line, counted before parsing (json.loads would recurse past any bound)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in line:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
            continue
        if byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def poison(row: Any) -> str | None:
    """Why a parsed line is not a usable row (None: it is): the key's types, and the record's own fields."""
    if not isinstance(row, dict):
        return "not a JSON object"
    for key, kind in _KEY_TYPES.items():
        value = row.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"{key} is {type(value).__name__}, not {kind.__name__}"
    if "task" in row and not isinstance(row["task"], str):
        return "task is not a string"
    if "method" in row and not isinstance(row["method"], str):
        return "method is not a string"
    if record_type(row) == "accuracy":
        acc = row.get("accuracy")
        if not isinstance(acc, (int, float)) or isinstance(acc, bool) or not math.isfinite(acc):
            return f"accuracy is {acc!r}, not a finite number"
    return None


def parse_line(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """(row, None) for a usable line; (None, reason) for a poisoned one; (None, None) for a blank or torn one."""
    if not line.strip():
        return None, None
    if len(line) > MAX_LINE_BYTES:
        return None, f"{len(line)} bytes, over {MAX_LINE_BYTES}"
    if _nesting(line) > MAX_DEPTH:
        return None, f"nested deeper than {MAX_DEPTH}"
    try:
        row = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, "not JSON" if line.endswith(b"\n") else None  # a torn final line is not poison: a crash mid-write
    reason = poison(row)
    return (None, reason) if reason else (row, None)


class ResultStore:
    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.path = self.directory / "results.jsonl"
        self._reported: set[tuple[int, str]] = set()
        self._index: set[tuple] = set()  # keys of the rows in the file's first `_indexed` bytes (this store's appends)
        self._indexed = 0
        self._inode: tuple[int, int] | None = None

    def rows(self) -> list[dict[str, Any]]:
        """Every usable row; poisoned lines are skipped and reported once (one warning per store)."""
        if not self.path.is_file():
            return []
        out, poisoned = [], []
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                row, reason = parse_line(line)
                if row is not None:
                    out.append(row)
                elif reason:
                    poisoned.append((number, reason))
        fresh = [p for p in poisoned if p not in self._reported]
        if fresh:
            self._reported.update(fresh)
            first = fresh[0]
            log.warning("%s: skipped %d unusable line(s) (line %d: %s)", self.path, len(fresh), *first)
        return out

    def keys(self) -> set[tuple]:
        return {row_key(r) for r in self.rows()}

    def check_writable(self) -> None:
        """Refuse, before any work, a store that cannot be written (one line, not a failure after training)."""
        if self.path.is_symlink():
            raise DDBenchError(f"result store file {self.path} is a symbolic link; refusing to write through it")
        probe = self.path
        while not probe.exists():  # the nearest existing ancestor decides whether the folders can be made
            probe = probe.parent
        if self.directory.exists() and not self.directory.is_dir():
            raise DDBenchError(f"result store {self.directory} is a file, not a directory; pass --results DIR")
        if self.path.exists() and not self.path.is_file():
            raise DDBenchError(f"result store file {self.path} is not a regular file")
        if not probe.is_dir() and probe != self.path:
            raise DDBenchError(f"result store {self.directory} is not writable: {probe} is a file, not a directory")
        if not os.access(probe, os.W_OK) or (probe.is_dir() and not os.access(probe, os.X_OK)):
            raise DDBenchError(f"result store {self.path} is not writable ({probe}: permission denied); pass --results DIR")

    @staticmethod
    def _checked(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for row in rows:
            missing = [k for k in required_fields(row) if k not in row]
            reason = poison(row)
            if missing or reason:
                raise DDBenchError(f"a result row {'lacks ' + ', '.join(missing) if missing else 'is unusable: ' + str(reason)}; "
                                   "nothing was written")
            out.append(row)
        return out

    def append(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append rows not yet present (all checked first: a bad row writes nothing); returns how many were written."""
        rows = self._checked(rows)
        self.check_writable()
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            present = self._present(fd)
            written = 0
            for row in rows:
                if row_key(row) in present:
                    continue
                data = _line(row)
                if os.fstat(fd).st_size and not self._ends_with_newline():
                    data = b"\n" + data  # never glue a row onto a torn line
                os.write(fd, data)
                present.add(row_key(row))
                written += 1
            os.fsync(fd)
            self._indexed = os.fstat(fd).st_size
            return written
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _present(self, fd: int) -> set[tuple]:
        """The keys in the file, under the append lock: only the bytes written since this store last looked are
        read (O(new rows) per append, not O(all rows)); a file replaced or shortened meanwhile is read again whole."""
        stat = os.fstat(fd)
        if (stat.st_dev, stat.st_ino) != self._inode or stat.st_size < self._indexed:
            self._index, self._indexed, self._inode = set(), 0, (stat.st_dev, stat.st_ino)
        if stat.st_size > self._indexed:
            with open(self.path, "rb") as handle:
                handle.seek(self._indexed)
                tail = handle.read(stat.st_size - self._indexed)
            complete = tail[: tail.rfind(b"\n") + 1]  # a torn last line stays unread until a newline ends it
            for line in complete.splitlines(keepends=True):
                row, _ = parse_line(line)
                if row is not None:
                    self._index.add(row_key(row))
            self._indexed += len(complete)
        return self._index

    def replace_with(self, rows: list[dict[str, Any]]) -> None:
        """Write exactly `rows` as the store, atomically: a temporary file beside it, fsync'd, renamed into place."""
        rows = self._checked(rows)
        self.check_writable()
        with atomic_write(self.path) as handle:
            for row in rows:
                handle.write(_line(row))

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"


def _line(row: dict[str, Any]) -> bytes:
    """One stored line: the row as canonical JSON (non-finite floats as null) and a newline."""
    return (json.dumps(json_safe(row), sort_keys=True, allow_nan=False) + "\n").encode()


_SAME = ("accuracy", "set_id", "data_fingerprint")  # what two copies of one row must agree on


def merge_stores(sources: list[ResultStore], into: ResultStore) -> tuple[int, list[str]]:
    """Merge every usable row of `sources` into `into`, each (run, card, arch, seed, task) once, all or nothing (the
    merged store replaces the old one in one rename); returns how many rows were added and one line per pair of rows
    that share a key but disagree (the first is kept). Poisoned lines of a source are skipped with a warning."""
    into.check_writable()
    for store in sources:
        if not store.path.is_file():
            raise DDBenchError(f"no result store at {store.path}")
    existing = into.rows()
    kept: dict[tuple, tuple[dict[str, Any], str]] = {row_key(r): (r, str(into.path)) for r in existing}
    conflicts, new = [], []
    for store in sources:
        for row in store.rows():
            key = row_key(row)
            if key in kept:
                first, where = kept[key]
                diff = [f for f in _SAME if first.get(f) != row.get(f)]
                if diff:
                    task = f" task {key[5]}" if key[5] else ""
                    what = ", ".join(f"{f} {first.get(f)} ({where}) vs {row.get(f)} ({store.path})" for f in diff)
                    conflicts.append(f"conflict: run {key[0]} card {key[1]} arch {key[3]} seed {key[4]}{task}: {what}; "
                                     "kept the first")
                continue
            kept[key] = (row, str(store.path))
            new.append(row)
    if new:
        into.replace_with(existing + new)
    return len(new), conflicts
