"""docs/extending.md's six worked examples run as written: each extension point is one file (plus its one
registration line, executed on import) and works end to end through the CLI."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ddbench.cli import main
from ddbench.core.errors import DDBenchError

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
QUICK = ["--epochs", "20", "--seeds", "2", "--no-progress"]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"ddbench_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would (dataclasses look their module up there)
    spec.loader.exec_module(module)
    return module


def _rows(store: Path) -> list[dict]:
    return [json.loads(line) for line in (store / "results.jsonl").read_text().splitlines()]


def test_every_example_is_documented():
    text = (EXAMPLES.parent / "extending.md").read_text()
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".py", ".toml")) == sorted(
        p.name for p in EXAMPLES.iterdir() if p.suffix in (".py", ".toml") and f"docs/examples/{p.name}" in text)
    assert len(list(EXAMPLES.glob("*.py"))) + len(list(EXAMPLES.glob("*.toml"))) == 6


def test_a_method_is_one_decorated_function(tmp_path):
    _load("method_class_means")  # the registry is restored after every test (conftest)
    assert main(["evaluate", "--method", "class-means-example", "--results", str(tmp_path), *QUICK]) == 0
    rows = _rows(tmp_path)
    assert {r["method"] for r in rows} == {"class-means-example"} and len(rows) == 2
    assert all(r["accuracy"] > 50 for r in rows)  # the images nearest each class mean train a usable digits network


def test_a_card_is_one_toml_file(tmp_path):
    card = EXAMPLES / "card_digits_ipc5.toml"
    assert main(["evaluate", "--method", "random", "--protocol", str(card), "--results", str(tmp_path), *QUICK]) == 0
    rows = _rows(tmp_path)
    assert {(r["protocol"], r["ipc"]) for r in rows} == {("digits-ipc5-example", 5)}


def _kind_card(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "bright.toml"
    path.write_text('id = "bright-digits"\nversion = 1\nkind = "bright-images-example"\ndataset = "digits"\nipc = 3\n'
                    f'archs = ["convnetd1"]\nseeds = 2\n{extra}')
    return path


def test_a_protocol_kind_is_one_class_with_its_own_card_section(tmp_path, capsys):
    from ddbench.kinds import KINDS, load_protocol

    _load("kind_bright_images")
    try:
        card = load_protocol(str(_kind_card(tmp_path, "min_brightness = 0.0\n")))
        assert card.params.min_brightness == 0.0
        other = load_protocol(str(_kind_card(tmp_path, "min_brightness = 0.5\n")))
        assert other.hash != card.hash  # the kind's own keys are part of the card's identity
        for extra, message in (("", "bright-images-example cards need min_brightness"),
                               ("min_brightnes = 0.0\n", "unknown key(s) min_brightnes"),
                               ("min_brightness = -20.0\n", "min_brightness must be above -10")):
            with pytest.raises(DDBenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
                load_protocol(str(_kind_card(tmp_path, extra)))
        path = _kind_card(tmp_path, "min_brightness = 0.0\n")
        assert main(["evaluate", "--method", "random", "--protocol", str(path), "--results", str(tmp_path / "lb"),
                     "--no-progress"]) == 0  # random makes supervised sets, which the new kind evaluates: no edit to it
        rows = _rows(tmp_path / "lb")
        assert len(rows) == 2 and all(0 <= r["accuracy"] <= 100 and (r["accuracy"] * 30 / 100) % 1 < 1e-6 for r in rows)
    finally:
        KINDS.unregister("bright-images-example")


def test_a_dataset_is_one_spec(tmp_path):
    from ddbench.data import DATASETS, list_datasets, load_dataset

    _load("dataset_digits_inverted")
    try:
        assert "digits_inverted" in list_datasets()
        inverted, plain = load_dataset("digits_inverted"), load_dataset("digits")
        assert bool(((255 - plain.x_train) == inverted.x_train).all()) and bool((plain.y_test == inverted.y_test).all())
        assert main(["evaluate", "--method", "random", "--protocol", str(_dataset_card(tmp_path)), "--results",
                     str(tmp_path / "lb"), *QUICK]) == 0
        assert {r["dataset"] for r in _rows(tmp_path / "lb")} == {"digits_inverted"}
    finally:
        DATASETS.unregister("digits_inverted")


def _dataset_card(tmp_path: Path) -> Path:
    path = tmp_path / "inverted.toml"
    path.write_text('id = "digits-inverted-example"\nversion = 1\ninclude = "digits-quick"\ndataset = "digits_inverted"\n')
    return path


def test_an_import_format_is_one_reader(tmp_path, capsys):
    from ddbench.data import load_dataset
    from ddbench.interop.formats import FORMATS
    from ddbench.store.distilled import DistilledSet

    _load("format_npz_pair")
    try:
        digits = load_dataset("digits")
        idx = np.concatenate([np.flatnonzero(digits.y_train.numpy() == c)[:2] for c in range(10)])
        np.savez(tmp_path / "set.npz", x=digits.x_train.numpy()[idx], y=digits.y_train.numpy()[idx])
        out = tmp_path / "set.safetensors"
        assert main(["import", str(tmp_path / "set.npz"), "--format", "npz-pair-example", "--dataset", "digits",
                     "--out", str(out)]) == 0
        dset = DistilledSet.load(out)
        assert len(dset.images) == 20 and dset.ipc == 2 and dset.extra["imported"]["format"] == "npz-pair-example"
        assert main(["import", str(tmp_path / "set.npz"), "--format", "npz-pair", "--dataset", "digits", "--out",
                     str(out)]) == 2
        assert "npz-pair-example" in capsys.readouterr().err  # a near miss is named, not a traceback
    finally:
        FORMATS.unregister("npz-pair-example")


def test_an_executor_is_one_class(tmp_path, capsys):
    from ddbench.sweep.registry import EXECUTORS

    _load("executor_announcing")
    try:
        assert main(["evaluate", "--method", "random", "--executor", "announcing-example", "--results", str(tmp_path),
                     *QUICK]) == 0
        assert "announcing executor: " in capsys.readouterr().err and len(_rows(tmp_path)) == 2
    finally:
        EXECUTORS.unregister("announcing-example")
