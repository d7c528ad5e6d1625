"""Bad input ends in one clear line and exit 2, with nothing written (the audit's classes of input)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ddbench.cli import main
from ddbench.core.errors import DDBenchError
from ddbench.data.space import ZCA, ImageSpace
from ddbench.store.distilled import MANIFEST_KEY, DistilledSet

IPC1 = str(Path(__file__).parent / "cards" / "digits-ipc1.toml")


def make(**kw) -> DistilledSet:
    g = torch.Generator().manual_seed(0)
    args = dict(images=torch.randn(10, 1, 8, 8, generator=g), labels=torch.arange(10), label_mode="hard", num_classes=10,
                dataset="digits", ipc=1, method="test", space=ImageSpace((0.3,), (0.37,)), learned_lr=0.02, distill_seed=0)
    args.update(kw)
    return DistilledSet(**args)


def _evaluate(path, tmp_path, *extra: str) -> tuple[int, str]:
    code = main(["evaluate", "--distilled", str(path), "--protocol", IPC1, "--epochs", "1", "--seeds", "1",
                 "--results", str(tmp_path / "lb"), "--no-progress", *extra])
    return code, ""


def _one_line_exit_2(capsys, code: int, needle: str) -> None:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("ddbench:")]
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("ddbench: error:") and needle in err[0], err


@pytest.mark.parametrize("change, why", [
    ({"images": torch.full((10, 1, 8, 8), 1e30)}, "image values reach"),
    ({"learned_lr": 1e30}, "learned lr must lie in"),
    ({"space": ImageSpace((0.3,), (0.37,), ZCA(torch.zeros(64), torch.full((64, 64), float("nan"))))}, "ZCA transform"),
    ({"method_config": {"blob": "x" * 100_000}}, "method_config exceeds"),
])
def test_sets_that_would_train_to_chance_are_refused(change, why):
    with pytest.raises(DDBenchError, match=why):
        make(**change)


def _rewrite_manifest(path, edit) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), framework="pt") as handle:
        manifest = json.loads(handle.metadata()[MANIFEST_KEY])
    tensors = load_file(str(path))
    text = edit(manifest)
    save_file(tensors, str(path), metadata={MANIFEST_KEY: text if isinstance(text, str) else json.dumps(manifest)})


@pytest.mark.parametrize("edit, why", [
    (lambda m: m.update(num_classes="ten"), "manifest field 'num_classes' must be int"),
    (lambda m: m.update(ipc=1.5), "manifest field 'ipc' must be int"),
    (lambda m: m.update(method_config=[1, 2]), "manifest field 'method_config' must be dict"),
    (lambda m: m.update(normalize={"mean": ["a"], "std": [1]}), "numeric lists"),
    (lambda m: json.dumps(m) + " " * (2 << 20), "manifest is"),
])
def test_malformed_manifests_are_one_line_errors(tmp_path, capsys, edit, why):
    path = make().save(tmp_path / "s.safetensors")
    _rewrite_manifest(path, edit)
    with pytest.raises(DDBenchError, match=why):
        DistilledSet.load(path)
    code, _ = _evaluate(path, tmp_path)
    _one_line_exit_2(capsys, code, why.split("'")[0])
    assert not (tmp_path / "lb" / "results.jsonl").exists()


def test_a_nan_in_a_manifest_never_reaches_the_store_as_bare_nan(tmp_path):
    from ddbench.store.results import ResultStore

    path = make(method_config={"lr": float("nan"), "k": 1}, extra={"final_loss": float("inf")}).save(tmp_path / "s.safetensors")
    back = DistilledSet.load(path)
    assert back.method_config == {"lr": None, "k": 1} and back.extra["final_loss"] is None
    code, _ = _evaluate(path, tmp_path)
    assert code == 0
    text = (tmp_path / "lb" / "results.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    for line in text.splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in the store"))
    assert ResultStore(tmp_path / "lb").rows()[0]["method_config"]["lr"] is None


@pytest.mark.parametrize("labels, why", [
    (torch.zeros(10, dtype=torch.long), "10 images of class 0"),
    (torch.tensor([0, 0, 1, 2, 3, 4, 5, 6, 7, 8]), "2 images of class 0"),
])
def test_per_class_budget_is_checked_not_only_the_total(tmp_path, capsys, labels, why):
    path = make(labels=labels).save(tmp_path / "s.safetensors")
    code = main(["evaluate", "--distilled", str(path), "--protocol", IPC1, "--epochs", "1",
                 "--results", str(tmp_path / "lb"), "--no-progress"])
    _one_line_exit_2(capsys, code, why)
    assert not (tmp_path / "lb").exists()


@pytest.mark.parametrize("args, why", [
    (["--seeds", "100000"], "--seeds must be 1..1000"),
    (["--epochs", "1000000000000"], "--epochs must be 0..100000"),
    (["--device", "mps"], "is not supported"),
    (["--device", "meta"], "is not supported"),
])
def test_bounds_and_devices_are_checked_before_any_work(tmp_path, capsys, args, why):
    code = main(["evaluate", "--method", "random", "--results", str(tmp_path / "lb"), "--no-progress", *args])
    _one_line_exit_2(capsys, code, why)
    assert not (tmp_path / "lb").exists()
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_store_is_found_before_training(tmp_path, capsys, monkeypatch):
    import ddbench.engine.train as train

    monkeypatch.setattr(train, "train_networks", lambda *a, **k: pytest.fail("trained before checking the store"))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["evaluate", "--method", "random", "--results", str(blocker), "--no-progress"])
    _one_line_exit_2(capsys, code, "is a file, not a directory")
    code = main(["evaluate", "--method", "random", "--results", str(blocker / "sub"), "--no-progress"])
    _one_line_exit_2(capsys, code, "not writable")
    import os

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode & os.W_OK else real_access(p, mode))  # as non-root
    code = main(["evaluate", "--method", "random", "--results", str(tmp_path / "lb"), "--no-progress"])
    _one_line_exit_2(capsys, code, "permission denied")


def test_user_input_errors_are_never_internal_errors(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "plain-file"
    afile.write_text("x")
    _one_line_exit_2(capsys, main(["data", "prepare", "mnist", "--data-root", str(afile)]), "is a file, not a directory")

    import numpy as np

    import ddbench.data.npz as npz

    (tmp_path / "mnist.npz").write_bytes(b"whatever")

    def denied(path, **kw):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(npz.np, "load", denied)
    code = main(["data", "prepare", "mnist", "--data-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "permission denied" in err and "corrupt" not in err and "delete" not in err
    monkeypatch.setattr(npz.np, "load", np.load)


def test_teacher_files_that_are_not_plain_weights_are_one_line_errors(tmp_path, capsys):
    from ddbench.engine.teacher import load_teacher

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"conv1.weight": torch.zeros(1), "evil": Payload()}, tmp_path / "pickled.pth")
    with pytest.raises(DDBenchError) as err:
        load_teacher(tmp_path / "pickled.pth", 3, 32)
    assert "\n" not in str(err.value) and "never runs pickled code" in str(err.value)
    assert "weights_only=False" not in str(err.value)
    assert "this must never run" not in capsys.readouterr().out
    for bad in ({"f.x.weight": torch.zeros(1)}, {"f.99.weight": torch.zeros(1)}, {"f.": torch.zeros(1)}):
        torch.save(bad, tmp_path / "odd.pth")
        with pytest.raises(DDBenchError, match="does not follow the Barlow Twins"):
            load_teacher(tmp_path / "odd.pth", 3, 32)
    code = main(["evaluate", "--method", "mkdt", "--teacher", str(tmp_path / "pickled.pth"), "--no-baselines",
                 "--results", str(tmp_path / "lb"), "--no-progress"])
    _one_line_exit_2(capsys, code, "never runs pickled code")


def test_files_respect_the_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = make().save(tmp_path / "s.safetensors")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        from ddbench.core.paths import atomic_write

        with atomic_write(tmp_path / "t.md") as handle:
            handle.write(b"x")
        assert stat.S_IMODE((tmp_path / "t.md").stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_without_kornia_the_barlow_views_name_the_extra(monkeypatch):
    """kornia is the `ssl` extra: without it, MKDT's teacher and the ssl baselines stop with one line naming it."""
    import sys

    from ddbench.engine.barlow import CIFAR_VIEWS, _augmenter

    monkeypatch.setitem(sys.modules, "kornia", None)
    monkeypatch.setitem(sys.modules, "kornia.augmentation", None)
    with pytest.raises(DDBenchError, match=r"need kornia: pip install -e '\.\[ssl\]'"):
        _augmenter(CIFAR_VIEWS, 3, (32, 32))
