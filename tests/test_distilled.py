"""The distilled-set format: round trips without pickles, refuses damaged files and misfits."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from ddbench.core.errors import DDBenchError
from ddbench.data import load_dataset
from ddbench.data.space import ZCA, ImageSpace
from ddbench.store.distilled import DistilledSet
from ddbench.sweep.evaluate import check_fits


def make(n_per_class: int = 1, **kw) -> DistilledSet:
    g = torch.Generator().manual_seed(0)
    args = dict(images=torch.randn(10 * n_per_class, 1, 8, 8, generator=g), labels=torch.arange(10).repeat_interleave(n_per_class),
                label_mode="hard", num_classes=10, dataset="digits", ipc=n_per_class, method="test",
                space=ImageSpace((0.3,), (0.37,)), learned_lr=0.02, distill_seed=0, method_config={"a": 1})
    args.update(kw)
    return DistilledSet(**args)


def test_round_trip_keeps_everything(tmp_path):
    s = make()
    path = s.save(tmp_path / "set.safetensors")
    back = DistilledSet.load(path)
    assert torch.equal(back.images, s.images) and torch.equal(back.labels, s.labels)
    assert back.learned_lr == 0.02 and back.method_config == {"a": 1} and back.space.mean == (0.3,)
    assert back.set_id == s.set_id and back.code_version
    assert path.read_bytes()[:8] != b"\x80\x02\x8a\x0a"  # not a torch pickle


def test_zca_travels_with_the_set(tmp_path):
    x = torch.randn(50, 1, 4, 4)
    zca = ZCA.fit(x)
    s = make(space=ImageSpace((0.3,), (0.37,), zca), images=torch.randn(10, 1, 4, 4))  # the ZCA of 4×4 images
    back = DistilledSet.load(s.save(tmp_path / "z.safetensors"))
    assert back.space.zca is not None and torch.allclose(back.space.zca.transform, zca.transform)
    white = zca.apply(x)
    cov = torch.cov(white.flatten(1).T)
    assert torch.allclose(zca.invert(white), x, atol=1e-3) and cov.diagonal().mean() < 1.0


def test_soft_labels_and_inconsistent_sets():
    make(labels=torch.softmax(torch.randn(10, 10), 1), label_mode="soft")
    with pytest.raises(DDBenchError, match="hard labels must be int64"):
        make(labels=torch.zeros(3, dtype=torch.long))
    with pytest.raises(DDBenchError, match="NaN"):
        make(images=torch.full((10, 1, 8, 8), float("nan")))
    with pytest.raises(DDBenchError, match="images must be"):
        make(images=torch.zeros(10, 8, 8))
    with pytest.raises(DDBenchError, match="learned lr"):
        make(learned_lr=-1.0)


def test_damaged_files_are_clear_errors(tmp_path):
    path = make().save(tmp_path / "s.safetensors")
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(DDBenchError, match="not a readable ddbench distilled set"):
        DistilledSet.load(tmp_path / "cut.safetensors")
    torch.save({"images": torch.zeros(1)}, tmp_path / "pickle.pt")
    with pytest.raises(DDBenchError, match="not a readable"):
        DistilledSet.load(tmp_path / "pickle.pt")
    with pytest.raises(DDBenchError, match="does not exist"):
        DistilledSet.load(tmp_path / "nope.safetensors")


def test_sets_that_do_not_fit_the_card_are_refused(card_ipc1):
    train = load_dataset("digits")
    check_fits(make(), card_ipc1, train)
    with pytest.raises(DDBenchError, match="1×8×8"):
        check_fits(make(images=torch.zeros(10, 3, 8, 8), space=ImageSpace((0, 0, 0), (1, 1, 1))), card_ipc1, train)
    with pytest.raises(DDBenchError, match="allows ipc 1"):
        check_fits(make(n_per_class=2, ipc=1), card_ipc1, train)
    with pytest.raises(DDBenchError, match="distilled from 'mnist'"):
        check_fits(make(dataset="mnist"), card_ipc1, train)
    with pytest.raises(DDBenchError, match="takes hard labels"):
        check_fits(make(labels=torch.softmax(torch.randn(10, 10), 1), label_mode="soft"), card_ipc1, train)
    with pytest.raises(DDBenchError, match="classes"):
        check_fits(make(num_classes=20), dataclasses.replace(card_ipc1), train)


def test_manifest_is_plain_json(tmp_path):
    from safetensors import safe_open

    path = make().save(tmp_path / "m.safetensors")
    with safe_open(str(path), framework="pt") as f:
        manifest = json.loads(f.metadata()["ddbench_manifest"])
    assert manifest["format"] == "ddbench-distilled-set" and manifest["ipc"] == 1 and manifest["label_mode"] == "hard"
