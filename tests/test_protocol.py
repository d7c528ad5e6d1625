"""Protocol cards: every card loads, hashes are stable content hashes, overrides are recorded."""
from __future__ import annotations

from importlib import resources

import pytest

from ddbench.cards.card import MAX_EPOCHS, list_protocols
from ddbench.core.errors import DDBenchError
from ddbench.kinds import load_protocol


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
    assert load_protocol("digits-quick").quick and not load_protocol("mnist-ipc1").quick


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
    with pytest.raises(DDBenchError, match="unknown key.*bogus"):
        load_protocol(str(bad))


@pytest.mark.parametrize("line, why", [
    ('[train]\naugment = "dsaa"\n', "train.augment must be one of|train.augment must be 'dsa' or 'none'"),
    ('normalize = "no"\n', "normalize must be a bool"),
    ('[train]\ndsa_strategy = "color_crop_blur"\n', "unknown operation"),
    ("[train]\nlr = -0.01\n", "train.lr must be positive"),
    ("[train]\nbatch_size = 0\n", "batch_size must be at least 1"),
    ("[train]\nepochs = 1e12\n", "epochs must be a int"),
    (f"[train]\nepochs = {MAX_EPOCHS + 1}\n", "epochs must be 0.."),
    ('precision = "fp8"\n', "precision must be one of"),
    ('precision = 32\n', "precision must be one of"),
    ('kind2 = "x"\n', "unknown key"),
])
def test_card_values_are_validated_when_the_card_loads(tmp_path, line, why):
    bad = tmp_path / "bad.toml"
    bad.write_text(HEAD + line)
    with pytest.raises(DDBenchError, match=why):
        load_protocol(str(bad))


@pytest.mark.parametrize("old, new, why", [
    ("seeds = 1", 'seeds = "5"', "seeds must be a int"),
    ("seeds = 1", "seeds = 100000", "seeds must be 1..1000"),
    ("ipc = 1", "ipc = 2.5", "ipc must be a int"),
    ('archs = ["convnet"]', 'archs = ["convnet", "resnet_nonexistent"]', "unknown architecture.*resnet_nonexistent"),
    ('dataset = "digits"', 'dataset = "imagenet21k"', "dataset 'imagenet21k' is unknown"),
    ('id = "bad"', 'id = "bad|x"', "id must be lower-case"),
])
def test_card_types_ranges_and_names_are_checked_before_any_work(tmp_path, old, new, why):
    from ddbench.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text(HEAD.replace(old, new))
    with pytest.raises(DDBenchError, match=why):
        load_protocol(str(bad))
    assert main(["evaluate", "--method", "random", "--protocol", str(bad), "--results", str(tmp_path / "lb")]) == 2
    assert not (tmp_path / "lb").exists()


# Golden content hashes: a change to a card, to TrainRecipe's fields or defaults, or to the hashing
# orphans every stored row of that card (they stop matching), so it must be deliberate.
GOLDEN_HASHES = {
    "mnist-ipc1": "a1f37574c655", "mnist-ipc10": "69c64c9d1f45", "mnist-dd-native-fixed": "1e9a28c3e4f8",
    "cifar10-ipc10": "3145f9e1e276", "digits-quick": "8c617566da74", "digits-ssl-quick": "e5d439113d39",
    "mnist-dd-native": "a75dd6287570", "cifar100-ssl-2pct": "1c9190add652", "tinyimagenet-ssl-2pct": "fa28e28b457f",
}


def test_card_hashes_are_pinned():
    for card_id, want in GOLDEN_HASHES.items():
        assert load_protocol(card_id).hash == want, card_id
