"""Hostile inputs (issue 26): each ends in one line and exit 2 (or is skipped with one warning where a reader must go
on), and writes nothing it should not."""
from __future__ import annotations

import json
import os

import pytest
from test_leaderboard import _row

from ddbench.cli import main
from ddbench.store.results import ResultStore


def _one_line(capsys, argv, match):
    code = main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2, err
    assert err[-1].startswith("ddbench: error: ") and match in err[-1], err
    assert "Traceback" not in "\n".join(err)
    return err


def test_poisoned_store_lines_are_skipped_and_reported_and_the_store_still_works(tmp_path, capsys, caplog):
    store = ResultStore(tmp_path / "lb")
    store.append([_row("random", 0, 90.0), _row("random", 1, 92.0)])
    with open(store.path, "ab") as handle:
        handle.write(b"[" * 200_000 + b"]" * 200_000 + b"\n")  # nested 200,000 levels deep
        handle.write(json.dumps({**_row("herding", 0, 95.0), "seed": [1, 2]}).encode() + b"\n")  # unhashable seed
        handle.write(json.dumps({**_row("kcenter", 0, 95.0), "accuracy": "ninety"}).encode() + b"\n")
        handle.write(json.dumps({**_row("forgetting", 0, 95.0), "run_id": 7}).encode() + b"\n")
    assert sorted(r["seed"] for r in store.rows()) == [0, 1]
    assert "skipped 4 unusable line(s)" in caplog.text and "nested deeper than" in caplog.text
    assert main(["leaderboard", "--results", str(tmp_path / "lb"), "--print"]) == 0  # every later read goes on
    assert main(["leaderboard", "--results", str(tmp_path / "lb"), "--html", str(tmp_path / "site")]) == 0
    _one_line(capsys, ["verify", "--results", str(tmp_path / "lb"), "--method", "forgetting"], "no standard row")


def test_merge_is_all_or_nothing(tmp_path, capsys):
    into = ResultStore(tmp_path / "into")
    into.append([_row("random", 0, 90.0)])
    before = into.path.read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    rows = [_row("herding", s, 90.0) for s in range(3)]
    rows[2].pop("n_test")  # a row lacking a required field, after two good ones
    (bad / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _one_line(capsys, ["results", "merge", str(bad), "--into", str(tmp_path / "into")], "lacks n_test")
    assert into.path.read_bytes() == before and not list((tmp_path / "into").glob("*.part"))  # untouched, no leftovers
    good = ResultStore(tmp_path / "good")
    good.append([_row("herding", s, 90.0) for s in range(3)])
    assert main(["results", "merge", str(tmp_path / "good"), "--into", str(tmp_path / "into")]) == 0
    assert len(into.rows()) == 4


def test_a_store_file_that_is_a_symlink_is_never_written_through(tmp_path, capsys):
    target = tmp_path / "elsewhere.jsonl"
    target.write_text("")
    (tmp_path / "lb").mkdir()
    os.symlink(target, tmp_path / "lb" / "results.jsonl")
    _one_line(capsys, ["evaluate", "--method", "random", "--epochs", "1", "--seeds", "1", "--results", str(tmp_path / "lb")],
              "is a symbolic link")
    assert target.read_text() == ""


def _digits_set(tmp_path):
    import torch

    from ddbench.data.space import ImageSpace
    from ddbench.store.distilled import DistilledSet

    dset = DistilledSet(images=torch.randn(10, 1, 8, 8), labels=torch.arange(10), label_mode="hard", num_classes=10,
                        dataset="digits", ipc=1, method="test", space=ImageSpace((0.3,), (0.37,)))
    return dset, dset.save(tmp_path / "set.safetensors")


def test_output_paths_are_checked_before_any_work_and_leave_no_part_files(tmp_path, capsys):
    dset, path = _digits_set(tmp_path)
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "a-file").write_text("x")
    _one_line(capsys, ["import", str(path), "--format", "tensors", "--dataset", "digits", "--out", str(tmp_path / "a-dir")],
              "is a directory, not a file")
    _one_line(capsys, ["distill", "--method", "random", "--protocol", "digits-quick", "--out", str(tmp_path / "a-dir")],
              "is a directory, not a file")
    for fmt in ("mtt", "folder", "tensors"):
        _one_line(capsys, ["export", str(path), "--format", fmt, "--out", str(tmp_path / "a-file")], "is a file, not a folder")
    ResultStore(tmp_path / "lb").append([_row("random", 0, 90.0)])
    _one_line(capsys, ["leaderboard", "--results", str(tmp_path / "lb"), "--html", str(tmp_path / "a-file")],
              "is a file, not a folder")
    assert not (tmp_path / "lb" / "LEADERBOARD.md").exists()  # refused before the markdown was written
    _one_line(capsys, ["distill", "--method", "random", "--protocol", "digits-quick", "--seed", "-1", "--out",
                       str(tmp_path / "s.safetensors")], "--seed must be 0 or more")
    assert not list(tmp_path.rglob("*.part"))


def _png_claiming(path, width, height):
    import struct
    import zlib

    from PIL import Image

    Image.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR's width and height, then its CRC
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("plant, match", [
    (lambda p: _png_claiming(p, 200_000, 200_000), "not a readable image"),
    (lambda p: os.symlink(p, p), "symbolic link"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: os.mkfifo(p), "is a named pipe"),
])
def test_import_refuses_hostile_image_files_quickly(tmp_path, capsys, plant, match):
    import time

    folder = tmp_path / "set"
    for c in range(10):
        (folder / str(c)).mkdir(parents=True)
        _png_claiming(folder / str(c) / "ok.png", 8, 8)
    plant(folder / "3" / "x.png")
    start = time.perf_counter()
    _one_line(capsys, ["import", str(folder), "--format", "folder", "--dataset", "digits", "--out", str(tmp_path / "o.safetensors")],
              match)
    assert time.perf_counter() - start < 5 and not (tmp_path / "o.safetensors").exists()


@pytest.mark.parametrize("blob, match", [
    (lambda t: {"images": t.randn(10, 1, 8, 8), "labels": t.arange(10), "mean": "abc", "std": [0.3]}, "'mean' must be"),
    (lambda t: {"images": t.randn(10, 1, 8, 8), "labels": t.arange(10), "mean": [0.3], "std": [0.3],
                "zca_mean": t.zeros(64), "zca_transform": [[1.0]]}, "'zca_transform' must be a tensor"),
    (lambda t: {"images": t.randn(10, 1, 8, 8), "labels": t.arange(10), "mean": [0.3], "std": [0.3],
                "zca_mean": t.zeros(16), "zca_transform": t.eye(16)}, "the ZCA transform is (16, 16)"),
    (lambda t: {"images": t.zeros(0, 1, 8, 8), "labels": t.zeros(0, dtype=t.long)}, "holds no images"),
])
def test_import_refuses_malformed_tensors_files(tmp_path, capsys, blob, match):
    import torch

    torch.save(blob(torch), tmp_path / "set.pt")
    _one_line(capsys, ["import", str(tmp_path / "set.pt"), "--format", "tensors", "--dataset", "digits", "--out",
                       str(tmp_path / "o.safetensors")], match)


def test_sets_that_should_never_make_a_row(tmp_path, capsys):
    import torch

    from ddbench.data.space import ImageSpace
    from ddbench.store.distilled import DistilledSet

    lb = str(tmp_path / "lb")
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    _one_line(capsys, ["evaluate", "--distilled", str(fifo), "--protocol", "digits-quick", "--results", lb], "is a named pipe")
    for method in ("x" * 900_000, ""):
        with pytest.raises(Exception, match="method name must be 1..200 characters"):
            DistilledSet(images=torch.randn(10, 1, 8, 8), labels=torch.arange(10), label_mode="hard", num_classes=10,
                         dataset="digits", ipc=1, method=method, space=ImageSpace((0.3,), (0.37,)))
    with pytest.raises(Exception, match="not floating point"):
        DistilledSet(images=torch.zeros(10, 1, 8, 8, dtype=torch.uint8), labels=torch.arange(10), label_mode="hard",
                     num_classes=10, dataset="digits", ipc=1, method="x", space=ImageSpace((0.3,), (0.37,)))
    empty = DistilledSet(images=torch.zeros(0, 1, 8, 8), labels=torch.zeros(0, dtype=torch.long), label_mode="hard",
                         num_classes=10, dataset="digits", ipc=10, method="empty", space=ImageSpace((0.3,), (0.37,)))
    _one_line(capsys, ["evaluate", "--distilled", str(empty.save(tmp_path / "e.safetensors")), "--protocol", "digits-quick",
                       "--results", lb], "holds no images")
    for cfg, match in (("iterations=0", "iterations=0 must be ≥ 1"), ("iterations=-5", "must be ≥ 1"),
                       ("lr_img=nan", "lr_img=nan must be a finite number")):
        _one_line(capsys, ["evaluate", "--method", "mtt", "--cfg", cfg, "--results", lb], match)
    _one_line(capsys, ["evaluate", "--method", "random", "--protocol", "../../x", "--results", lb], "unknown protocol")
    _one_line(capsys, ["robustness", "--method", "random", "--protocol", "digits-*", "--results", lb], "matches 5")
    err = _one_line(capsys, ["evaluate", "--method", "random", "--arch", "a" * 2_000_000, "--results", lb], "architecture")
    assert len(err[-1]) < 500  # a 2 MB name is cut in the message
    assert not (tmp_path / "lb").exists()


def test_cache_env_files_teachers_and_configs_refused_before_work(tmp_path, capsys, monkeypatch):
    import torch

    (tmp_path / "cache-file").write_text("x")
    monkeypatch.setenv("DDBENCH_CACHE", str(tmp_path / "cache-file"))
    _one_line(capsys, ["evaluate", "--method", "random", "--results", str(tmp_path / "lb")], "DDBENCH_CACHE=")
    monkeypatch.delenv("DDBENCH_CACHE")
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")  # a module: pickled code, not a state dict
    _one_line(capsys, ["evaluate", "--method", "mkdt", "--protocol", "digits-ssl-quick", "--teacher", str(tmp_path / "pickled.pt"),
                       "--results", str(tmp_path / "lb")], "holds pickled objects other than tensors")
    assert not (tmp_path / "lb").exists()  # refused before the card's baselines wrote any row
    store = ResultStore(tmp_path / "v")
    store.append([{**_row("random", 0, 90.0), "method_config": ["a"]}])
    _one_line(capsys, ["verify", "--results", str(tmp_path / "v")], "cannot be re-run")


def test_an_inverted_copy_of_mnist_is_not_a_standard_copy(tmp_path, monkeypatch, caplog, shared_data):
    import numpy as np

    from ddbench.data import load_dataset

    d = np.load(shared_data / "mnist.npz")
    np.savez(tmp_path / "mnist.npz", x_train=255 - d["x_train"], y_train=d["y_train"], x_test=255 - d["x_test"],
             y_test=d["y_test"], class_names=d["class_names"])
    assert load_dataset("mnist", tmp_path).complete is False and "not a standard copy" in caplog.text


def test_flags_accumulate_or_refuse_a_repeat_and_cards_must_be_utf8_files(tmp_path, capsys):
    import re

    from ddbench.cli import build_parser

    lb = str(tmp_path / "lb")

    def tasks(*argv: str) -> int:
        assert main(["evaluate", *argv, "--plan", "--results", lb]) == 0
        return int(re.search(r"(\d+) tasks", capsys.readouterr().out).group(1))

    one = tasks("--method", "random", "--protocol", "digits-quick")
    both = tasks("--method", "random", "--protocol", "digits-quick", "--protocol", "digits-xarch")
    assert both > one == tasks("--method", "random", "random", "--protocol", "digits-quick")  # both cards; one random

    args = build_parser().parse_args(["evaluate", "--method", "random", "--method", "herding,kcenter", "--protocol", "a", "b",
                                      "--protocol", "c", "--arch", "x", "--arch", "y,z", "--cfg", "k=1", "--cfg", "j=2"])
    assert args.method == ["random", "herding,kcenter"] and args.protocol == ["a", "b", "c"]
    assert args.arch == ["x", "y,z"] and args.cfg == ["k=1", "j=2"]
    _one_line(capsys, ["evaluate", "--method", "random", "--seeds", "2", "--seeds", "3", "--results", lb], "--seeds given twice")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('id = "caf\xe9"\n'.encode("latin-1"))
    _one_line(capsys, ["evaluate", "--method", "random", "--protocol", str(bad), "--results", lb], "is not valid UTF-8")
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    _one_line(capsys, ["evaluate", "--method", "random", "--protocol", str(fifo), "--results", lb], "is a named pipe")
    assert not (tmp_path / "lb").exists()


def test_brackets_and_escaped_quotes_inside_strings_are_not_nesting(tmp_path):
    store = ResultStore(tmp_path)
    store.append([{**_row("random", 0, 90.0), "method_config": {"note": 'a "quoted" ' + "[" * 40 + '\\" {{{'}}])
    assert len(store.rows()) == 1  # a string full of brackets is not a deeply nested line
