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

ROW_SCHEMA = 1
KEY_FIELDS = ("run_id", "protocol", "protocol_hash", "arch", "seed")
OPTIONAL_KEY_FIELDS = ("task",)  # ssl-transfer rows: "<downstream>@<label fraction>"
REQUIRED_FIELDS = (
    "schema", "method", "method_config", "run_id", "set_id", "distill_seed", "protocol", "protocol_version",
    "protocol_hash", "protocol_standard", "dataset", "ipc", "arch", "seed", "accuracy", "n_test",
    "ddbench_version", "git_sha", "torch_version", "device", "wall_time_s", "peak_mem_mb", "timestamp",
)


def row_key(row: dict[str, Any]) -> tuple:
    return tuple(row[k] for k in KEY_FIELDS) + tuple(row.get(k, "") for k in OPTIONAL_KEY_FIELDS)


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

    def append(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append rows not yet present; returns how many were written."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            present = self.keys()
            written = 0
            for row in rows:
                missing = [k for k in REQUIRED_FIELDS if k not in row]
                if missing:
                    raise ValueError(f"result row lacks {missing}")
                if row_key(row) in present:
                    continue
                data = (json.dumps(row, sort_keys=True) + "\n").encode()
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
