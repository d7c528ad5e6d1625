"""The result store: atomic appends, no duplicates, tolerant of a torn last line."""
from __future__ import annotations

import multiprocessing as mp

from ddbench.store.results import REQUIRED_FIELDS, ResultStore


def row(seed: int, **kw):
    base = {k: "x" for k in REQUIRED_FIELDS}
    base.update(run_id="r", protocol="p", protocol_hash="h", arch="a", seed=seed, accuracy=50.0)
    base.update(kw)
    return base


def test_append_skips_present_rows(tmp_path):
    store = ResultStore(tmp_path)
    assert store.append([row(0), row(1)]) == 2
    assert store.append([row(1), row(2)]) == 1
    assert [r["seed"] for r in store.rows()] == [0, 1, 2]


def test_torn_last_line_is_ignored_and_never_glued(tmp_path):
    store = ResultStore(tmp_path)
    store.append([row(0)])
    with open(store.path, "ab") as f:
        f.write(b'{"run_id": "r", "proto')  # a crash mid-write
    assert [r["seed"] for r in store.rows()] == [0]
    store.append([row(1)])
    assert [r["seed"] for r in store.rows()] == [0, 1]


def _writer(path, start):
    store = ResultStore(path)
    for s in range(start, start + 25):
        store.append([row(s)])


def test_concurrent_writers_lose_nothing(tmp_path):
    procs = [mp.Process(target=_writer, args=(tmp_path, k * 25)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert sorted(r["seed"] for r in ResultStore(tmp_path).rows()) == list(range(100))


def test_appends_read_only_what_was_written_since(tmp_path, monkeypatch):
    """A driver appending one row per finished task reads each line once, not the whole store every time
    (10,000 tasks would otherwise parse 50 million lines); rows another writer adds meanwhile are still seen."""
    import ddbench.store.results as results

    parsed = []
    real = results.parse_line
    monkeypatch.setattr(results, "parse_line", lambda line: parsed.append(1) or real(line))
    store = ResultStore(tmp_path)
    for s in range(300):
        store.append([row(s)])
    assert len(parsed) <= 300, len(parsed)  # quadratic re-reading would parse about 45,000 lines
    ResultStore(tmp_path).append([row(1000)])  # another writer
    assert store.append([row(1000), row(1001)]) == 1  # its row is seen: not written twice
    assert [r["seed"] for r in store.rows()][-2:] == [1000, 1001]
