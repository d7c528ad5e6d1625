"""Protocol cards: every card loads, hashes are stable content hashes, overrides are recorded."""
from __future__ import annotations

from importlib import resources

import pytest

from ddbench.errors import DDBenchError
from ddbench.protocol import list_protocols, load_protocol, quick_protocol


def test_the_standard_cards_exist_with_the_field_recipe():
    ids = set(list_protocols())
    for ds in ("mnist", "cifar10", "cifar100", "tinyimagenet"):
        for ipc in (1, 10, 50):
            assert f"{ds}-ipc{ipc}" in ids
    card = load_protocol("cifar10-ipc10")
    t = card.train
    assert (t.epochs, t.batch_size, t.lr, t.momentum, t.weight_decay, t.lr_decay_factor) == (1000, 256, 0.01, 0.9, 5e-4, 0.1)
    assert t.augment == "dsa" and "flip" in t.dsa_strategy and card.archs == ("convnet",)
    assert "flip" not in load_protocol("mnist-ipc1").train.dsa_strategy
    assert load_protocol("tinyimagenet-ipc1").archs == ("convnetd4",)
    assert quick_protocol().dataset == "digits"


def test_hash_is_stable_and_content_based(tmp_path):
    a = load_protocol("mnist-ipc10")
    assert a.hash == load_protocol("mnist-ipc10").hash
    assert a.hash != load_protocol("mnist-ipc50").hash
    text = tmp_path / "x.toml"
    source = resources.files("ddbench.protocols").joinpath("mnist-ipc10.toml").read_text()
    text.write_text("# a new comment\n" + source)
    assert load_protocol(str(text)).hash == a.hash  # comments do not change it
    text.write_text(source.replace("lr = 0.01", "lr = 0.02"))
    assert load_protocol(str(text)).hash != a.hash


def test_overrides_change_the_hash_and_are_recorded():
    card = load_protocol("mnist-ipc10")
    short = card.with_overrides(epochs=20)
    assert short.train.epochs == 20 and short.overrides == {"epochs": 20} and not short.standard
    assert short.hash != card.hash
    same = card.with_overrides(seeds=2)
    assert same.standard and same.hash == card.hash  # fewer seeds = fewer rows, same recipe
    assert card.with_overrides(epochs=None) is card


HEAD = 'id = "bad"\nversion = 1\nkind = "supervised"\ndataset = "digits"\nipc = 1\narchs = ["convnet"]\nseeds = 1\n'


def test_bad_cards_are_refused(tmp_path):
    with pytest.raises(DDBenchError, match="unknown protocol 'cifar10-ipc7'"):
        load_protocol("cifar10-ipc7")
    bad = tmp_path / "bad.toml"
    bad.write_text(HEAD + 'labels = "fuzzy"\n')
    with pytest.raises(DDBenchError, match="labels must be one of"):
        load_protocol(str(bad))
    bad.write_text("id = [unclosed")
    with pytest.raises(DDBenchError, match="not valid TOML"):
        load_protocol(str(bad))
    bad.write_text(HEAD + "bogus = 3\n")
    with pytest.raises(DDBenchError, match="malformed"):
        load_protocol(str(bad))
