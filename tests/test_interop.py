"""Sets made by other codebases: every layout imports and evaluates, exactly as the same images do natively."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ddbench.cli import IMPORT_FORMATS, main
from ddbench.core.errors import DDBenchError
from ddbench.data import load_dataset
from ddbench.data.space import ZCA, ImageSpace
from ddbench.distill.registry import create_method
from ddbench.interop import FORMATS, ImportOptions, export_set, import_set
from ddbench.interop.presets import pixel_space
from ddbench.kinds import load_protocol
from ddbench.store.distilled import DistilledSet
from ddbench.store.results import ResultStore
from ddbench.sweep.evaluate import EvalOptions, card_space, distill_cached, evaluate_set

CARD = Path(__file__).parent / "cards" / "digits-ipc1.toml"


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def card():
    return load_protocol(str(CARD)).with_overrides(epochs=30)


@pytest.fixture
def eval_opts(tmp_path):
    return EvalOptions(device=torch.device("cpu"), store=ResultStore(tmp_path / "lb"), progress=False, seeds=2,
                       cache_dir=tmp_path / "cache", external=True)


@pytest.fixture(scope="module")
def native(digits, card, tmp_path_factory):
    """A random real digits set made by ddbench (1 image per class, the dataset's space)."""
    opts = EvalOptions(device=torch.device("cpu"), store=None, progress=False, cache_dir=tmp_path_factory.mktemp("cache"))
    return distill_cached(create_method("random"), card, digits, 0, opts)


def _space_flag(space: ImageSpace) -> str:
    return ",".join(map(str, space.mean)) + ":" + ",".join(map(str, space.std))


def _save(obj, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def write_layout(fmt: str, dset: DistilledSet, root: Path) -> tuple[Path, dict]:
    """`dset` written as that codebase writes its sets (the facts in README), and the import flags it needs."""
    x, y = dset.images.clone(), dset.labels.clone()
    norm = _space_flag(dset.space)
    if fmt == "mtt":
        _save(x, root / "images_best.pt"), _save(y, root / "labels_best.pt")
        return root, {"lr": "0.01", "normalize": norm}
    if fmt == "datm":
        _save(x, root / "images_best.pt"), _save(10.0 * torch.nn.functional.one_hot(y, 10).float(), root / "labels_best.pt")
        _save(torch.tensor(0.01), root / "lr_best.pt")
        return root, {"normalize": norm}
    if fmt == "dc":
        other = (x.flip(0), y.flip(0))
        path = _save({"data": [[other[0], other[1]], [x, y]], "accs_all_exps": {"ConvNet": [0.5, 0.6]}},
                     root / "res_DC_digits_ConvNet_1ipc.pt")
        return path, {"experiment": 1, "normalize": norm}
    if fmt == "mkdt":
        targets = torch.randn(len(x), 16, generator=torch.Generator().manual_seed(0))
        for it in (0, 5):
            _save(x, root / f"images_{it}.pt"), _save(targets, root / f"labels_{it}.pt"), _save(torch.tensor(0.05), root / f"synlr_{it}.pt")
        return root, {"normalize": norm}
    if fmt == "tensors":  # DD-Ranking's folder of images.pt / labels.pt / lr.pt, as [0, 1] pixels
        _save(dset.space.to_pixels(x), root / "images.pt"), _save(y, root / "labels.pt"), _save(torch.tensor(0.01), root / "lr.pt")
        return root, {}
    assert fmt == "folder"  # SRe2L / RDED: one folder per class, images as pixels
    return export_set(dset, "folder", root)[0].parent.parent, {"normalize": "dataset"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_layout_imports_and_evaluates(fmt, native, digits, card, eval_opts, tmp_path):
    src, flags = write_layout(fmt, native, tmp_path / fmt)
    dset = import_set(src, ImportOptions(format=fmt, dataset="digits", **flags), digits)
    imported = dset.extra["imported"]
    assert imported["format"] == fmt and imported["files"] and all(len(h) == 64 for h in imported["files"].values())
    assert imported["assumptions"]["normalisation"]
    if fmt == "mkdt":
        assert dset.label_mode == "regression" and dset.learned_lr == pytest.approx(0.05) and imported["notes"]["iteration"] == "5"
        ssl = load_protocol("digits-ssl-quick")
        rows = evaluate_set(dset, ssl, dataclasses.replace(eval_opts, seeds=1))
        assert {r["task"] for r in rows} == {f"digits@{f}" for f in ssl.params.probe.fractions}
        return
    assert len(dset.images) == 10 and dset.labels.shape[0] == 10
    if fmt == "datm":
        assert dset.label_mode == "soft" and torch.allclose(dset.labels.sum(1), torch.ones(10))
        assert imported["assumptions"]["labels"].startswith("softmax")
        rows = evaluate_set(dset, dataclasses.replace(card, labels="soft"), eval_opts)
    else:
        assert dset.label_mode == "hard" and torch.equal(dset.labels, native.labels)
        rows = evaluate_set(dset, card, eval_opts)
    assert len(rows) == 2 and all(r["external"] and r["method"] == fmt for r in rows)
    assert all(r["accuracy"] > 20.0 for r in rows), [r["accuracy"] for r in rows]  # chance is 10%


def test_an_imported_set_scores_exactly_what_it_scores_natively(native, digits, card, eval_opts, tmp_path):
    src, flags = write_layout("mtt", native, tmp_path / "mtt")
    dset = import_set(src, ImportOptions(format="mtt", dataset="digits", lr="card", normalize=flags["normalize"]), digits)
    assert dset.set_id == native.set_id
    ours = evaluate_set(native, card, dataclasses.replace(eval_opts, store=ResultStore(tmp_path / "a"), external=False))
    theirs = evaluate_set(dset, card, dataclasses.replace(eval_opts, store=ResultStore(tmp_path / "b")))
    assert [r["accuracy"] for r in ours] == [r["accuracy"] for r in theirs]


@pytest.mark.parametrize("fmt", ["tensors", "mtt", "folder"])
def test_export_then_import_gives_back_the_same_set(fmt, native, digits, tmp_path):
    export_set(native, fmt, tmp_path / fmt)
    flags = {"tensors": {}, "mtt": {"lr": "card", "normalize": _space_flag(native.space)}, "folder": {"normalize": "dataset"}}[fmt]
    src = tmp_path / fmt / "set.pt" if fmt == "tensors" else tmp_path / fmt
    back = import_set(src, ImportOptions(format=fmt, dataset="digits", **flags), digits)
    assert back.set_id == native.set_id


def _zca_set(digits, native) -> tuple[torch.Tensor, ZCA]:
    """Native images as MTT --zca saves them: ToTensor only, then ZCA fitted on the whole training set."""
    zca = ZCA.fit(pixel_space(1).from_uint8(digits.x_train), eps=0.1)
    return zca.apply(native.space.to_pixels(native.images)), zca


def test_zca_space_sets_carry_the_transform_and_are_refused_without_zca(native, digits, card, eval_opts, tmp_path):
    images, zca = _zca_set(digits, native)
    _save(images, tmp_path / "images_best.pt"), _save(native.labels, tmp_path / "labels_best.pt")
    dset = import_set(tmp_path, ImportOptions(format="mtt", dataset="digits", lr="0.01", zca=True), digits)
    assert dset.space.zca is not None and dset.space.mean == (0.0,) and dset.space.std == (1.0,)
    torch.testing.assert_close(dset.space.zca.transform, zca.transform)
    # the test images go through the same transform: the engine maps them with the set's space
    test_mapped = dset.space.from_uint8(digits.x_test[:5])
    torch.testing.assert_close(test_mapped, zca.apply(pixel_space(1).from_uint8(digits.x_test[:5])))
    rows = evaluate_set(dset, card, eval_opts)
    assert all(r["accuracy"] > 20.0 for r in rows)
    with pytest.raises(DDBenchError, match="look ZCA-whitened.*pass --zca"):
        import_set(tmp_path, ImportOptions(format="mtt", dataset="digits", lr="0.01", normalize="dataset"), digits)
    with pytest.raises(DDBenchError, match="not .0, 1. as pixels: already normalised or ZCA-whitened"):
        import_set(tmp_path, ImportOptions(format="mtt", dataset="digits", lr="0.01", normalize="pixels"), digits)
    _save(native.space.to_pixels(native.images), tmp_path / "images_best.pt")  # plain pixels claimed as ZCA
    with pytest.raises(DDBenchError, match="drop --zca"):
        import_set(tmp_path, ImportOptions(format="mtt", dataset="digits", lr="0.01", zca=True), digits)


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {_RunsCode.marker}",))


@pytest.mark.parametrize("fmt", ["mtt", "datm", "dc", "mkdt", "tensors"])
def test_a_pickle_carrying_code_is_refused_and_never_runs(fmt, digits, tmp_path):
    _RunsCode.marker = tmp_path / "pwned"
    evil = {"images": _RunsCode()} if fmt == "tensors" else _RunsCode()
    name = {"mtt": "images_best.pt", "datm": "images_best.pt", "dc": "res_DC_digits_ConvNet_1ipc.pt", "mkdt": "images_1.pt",
            "tensors": "set.pt"}[fmt]
    path = _save(evil, tmp_path / "src" / name)
    for extra in ("labels_best.pt", "labels_1.pt"):
        _save(torch.zeros(10, dtype=torch.long), tmp_path / "src" / extra)
    src = path if fmt in ("dc", "tensors") else path.parent
    with pytest.raises(DDBenchError, match="refused — not a plain tensor file"):
        import_set(src, ImportOptions(format=fmt, dataset="digits", lr="0.01"), digits)
    assert not _RunsCode.marker.exists()


@pytest.mark.parametrize("images, labels, why", [
    (torch.randn(10, 3, 32, 32), torch.arange(10), r"images are \(10, 3, 32, 32\); digits needs \(N, 1, 8, 8\)"),
    (torch.randn(10, 1, 8, 8), torch.arange(10) + 5, "labels run from 5 to 14; digits has 10 classes"),
    (torch.rand(10, 1, 8, 8) * 255, torch.arange(10), r"pixels in \[0, 255\]"),
    (torch.rand(10, 1, 8, 8), torch.arange(10), r"pixels in \[0, 1\], not normalised"),
])
def test_sets_that_do_not_fit_the_dataset_are_one_line_exit_2(images, labels, why, tmp_path, capsys):
    _save(images, tmp_path / "images_best.pt"), _save(labels, tmp_path / "labels_best.pt")
    code = main(["import", str(tmp_path), "--format", "mtt", "--dataset", "digits", "--lr", "0.01", "--normalize", "dataset",
                 "--out", str(tmp_path / "out.safetensors")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and not (tmp_path / "out.safetensors").exists()
    import re

    assert re.search(why, err), err


def test_mtt_needs_its_lr_and_the_cli_imports_on_the_fly(native, tmp_path, capsys):
    src, flags = write_layout("mtt", native, tmp_path / "mtt")
    code = main(["import", str(src), "--format", "mtt", "--dataset", "digits", "--normalize", flags["normalize"],
                 "--out", str(tmp_path / "x.safetensors")])
    assert code == 2 and "MTT never saves its learned lr" in capsys.readouterr().err
    code = main(["evaluate", "--distilled", str(src), "--format", "mtt", "--lr", "0.02", "--normalize", flags["normalize"],
                 "--protocol", str(CARD), "--epochs", "5", "--seeds", "1", "--device", "cpu", "--no-progress",
                 "--results", str(tmp_path / "lb")])
    out = capsys.readouterr()
    assert code == 0, out.err
    (row,) = ResultStore(tmp_path / "lb").rows()
    assert row["external"] and row["method"] == "mtt" and row["learned_lr_used"] and row["lr"] == pytest.approx(0.02)
    assert tuple(IMPORT_FORMATS) == tuple(FORMATS.names())


def test_folder_import_of_real_images_matches_the_native_subset(native, digits, card, tmp_path):
    """Pixels written as PNGs and read back map into the dataset's space bit for bit."""
    export_set(native, "folder", tmp_path / "f")
    png = next((tmp_path / "f").rglob("*.png"))
    assert np.asarray(Image.open(png)).shape == (8, 8)
    back = import_set(tmp_path / "f", ImportOptions(format="folder", dataset="digits"), digits)
    assert back.space == card_space(card, digits) and torch.equal(back.images, native.images)


def test_import_reads_the_training_images_only_for_a_zca_fit(shared_data, tmp_path, monkeypatch, caplog):
    """MNIST's spec holds its shape and constants and the .npz its class names: an MTT set imports without loading
    a single training image; with --zca the training split is read (and the log says so)."""
    import ddbench.data
    import ddbench.interop.importer as importer

    loads: list[str] = []
    real_load = ddbench.data.load_dataset

    def counting_load(name, root=None, *a, **k):
        loads.append(name)
        return real_load(name, root, *a, **k)

    monkeypatch.setattr(ddbench.data, "load_dataset", counting_load)
    monkeypatch.setattr(importer, "load_dataset", counting_load)
    src = tmp_path / "mtt"
    src.mkdir()
    torch.save(torch.rand(10, 1, 28, 28) * 0.5, src / "images_best.pt")
    torch.save(torch.arange(10), src / "labels_best.pt")
    opts = ImportOptions(format="mtt", dataset="mnist", data_root=shared_data, lr="card", normalize="pixels")
    dset = import_set(src, opts)
    assert loads == [] and dset.num_classes == 10 and dset.dataset == "mnist" and tuple(dset.images.shape[1:]) == (1, 28, 28)
    torch.save(torch.randn(10, 1, 28, 28) * 0.3, src / "images_best.pt")  # ZCA space: centred, std near 0.3
    with caplog.at_level("INFO"):
        import_set(src, dataclasses.replace(opts, zca=True, normalize=None))
    assert loads == ["mnist"] and "reading the training split for the ZCA fit" in caplog.text
