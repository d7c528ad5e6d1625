"""The append-only JSONL result store: one row per (run, protocol, arch, seed).

Appends are atomic: each row is one complete line written by a single write() on a file opened
with O_APPEND, under an exclusive lock, then fsync'd. A reader skips a damaged last line (a
crash mid-write on a dying disk), so the store always parses. A rerun skips rows already
present, so an interrupted sweep resumes where it stopped.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any, Iterable

from ddbench.core.errors import DDBenchError
from ddbench.store.rows import (  # noqa: F401  (REQUIRED_FIELDS, ROW_SCHEMA, Row: part of this module's interface)
    KEY_FIELDS,
    OPTIONAL_KEY_FIELDS,
    REQUIRED_FIELDS,
    ROW_SCHEMA,
    Row,
    json_safe,
    required_fields,
    row_key,
)


class ResultStore:
    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.path = self.directory / "results.jsonl"

    def rows(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        out = []
        with open(self.path, "rb") as handle:
            for line in handle:
                try:
                    row = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue  # a torn final line from a crash; every complete row is kept
                if isinstance(row, dict) and all(k in row for k in KEY_FIELDS):
                    out.append(row)
        return out

    def keys(self) -> set[tuple]:
        return {row_key(r) for r in self.rows()}

    def check_writable(self) -> None:
        """Refuse, before any work, a store that cannot be written (one line, not a failure after training)."""
        probe = self.path
        while not probe.exists():  # the nearest existing ancestor decides whether the folders can be made
            probe = probe.parent
        if self.directory.exists() and not self.directory.is_dir():
            raise DDBenchError(f"result store {self.directory} is a file, not a directory; pass --results DIR")
        if self.path.exists() and self.path.is_dir():
            raise DDBenchError(f"result store file {self.path} is a directory")
        if not probe.is_dir() and probe != self.path:
            raise DDBenchError(f"result store {self.directory} is not writable: {probe} is a file, not a directory")
        if not os.access(probe, os.W_OK) or (probe.is_dir() and not os.access(probe, os.X_OK)):
            raise DDBenchError(f"result store {self.path} is not writable ({probe}: permission denied); pass --results DIR")

    def append(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append rows not yet present; returns how many were written."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            present = self.keys()
            written = 0
            for row in rows:
                missing = [k for k in required_fields(row) if k not in row]
                if missing:
                    raise ValueError(f"result row lacks {missing}")
                if row_key(row) in present:
                    continue
                data = (json.dumps(json_safe(row), sort_keys=True, allow_nan=False) + "\n").encode()
                if os.fstat(fd).st_size and not self._ends_with_newline():
                    data = b"\n" + data  # never glue a row onto a torn line
                os.write(fd, data)
                present.add(row_key(row))
                written += 1
            os.fsync(fd)
            return written
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"


_SAME = ("accuracy", "set_id", "data_fingerprint")  # what two copies of one row must agree on


def merge_stores(sources: list[ResultStore], into: ResultStore) -> tuple[int, list[str]]:
    """Append every row of `sources` to `into`, each (run, card, arch, seed, task) once; returns how many
    rows were written and one line per pair of rows that share a key but disagree (the first is kept)."""
    into.check_writable()
    kept: dict[tuple, tuple[dict[str, Any], str]] = {row_key(r): (r, str(into.path)) for r in into.rows()}
    conflicts, new = [], []
    for store in sources:
        if not store.path.is_file():
            raise DDBenchError(f"no result store at {store.path}")
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
    return into.append(new), conflicts
