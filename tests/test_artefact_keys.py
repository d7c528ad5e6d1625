"""Artefact keys are the same on every machine (issue 24): a ZCA is keyed by what determined it, never by its float
bytes, which change with the thread count; a ZCA card's experts are trained once and the ZCA fitted once."""
from __future__ import annotations

import dataclasses
import logging

import torch

from ddbench.data import load_dataset
from ddbench.data.space import ZCA, ImageSpace
from ddbench.distill.registry import create_method
from ddbench.engine import whitening
from ddbench.engine.experts import ExpertRecipe, expert_bank
from ddbench.engine.whitening import pending_zca_space, resolve_space, zca_path
from ddbench.kinds import load_protocol
from ddbench.sweep.evaluate import evaluate_method

PLAIN = ImageSpace((0.0,), (1.0,))


def _fit_with(threads: int, train) -> ZCA:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return ZCA.fit(PLAIN.from_uint8(train.x_train), eps=0.1, key="k")
    finally:
        torch.set_num_threads(before)


def test_expert_keys_do_not_depend_on_the_thread_count(tmp_path):
    train = load_dataset("digits")
    one, two = _fit_with(1, train), _fit_with(2, train)
    recipe = ExpertRecipe(epochs=2)
    by_bytes = [expert_bank("convnetd1", train, ImageSpace((0.0,), (1.0,), ZCA(z.mean, z.transform, 0.1)), recipe, tmp_path)
                for z in (one, two)]
    pending = pending_zca_space(train, PLAIN)
    resolved_1 = resolve_space(pending, train, tmp_path / "a")
    resolved_2 = resolve_space(pending, train, tmp_path / "b")
    keyed = [expert_bank("convnetd1", train, s, recipe, tmp_path) for s in (pending, resolved_1, resolved_2)]
    assert len({b.directory for b in keyed}) == 1  # pending (the driver, the plan) and resolved (any worker) agree
    if not torch.equal(one.transform, two.transform):  # where the bytes do differ, the old key split the bank in two
        assert by_bytes[0].directory != by_bytes[1].directory


def test_a_zca_mtt_run_fits_once_and_trains_each_expert_once(tmp_path, caplog, opts, monkeypatch):
    monkeypatch.setattr(whitening, "_RESOLVED", {})  # no fit remembered from another test
    card = load_protocol("digits-quick").with_overrides(epochs=3)
    opts = dataclasses.replace(opts, seeds=2, cache_dir=tmp_path / "cache")
    mtt = create_method("mtt", zca=True, num_experts=2, expert_train_epochs=3, iterations=2, max_start_epoch=1)
    with caplog.at_level(logging.INFO):
        rows = evaluate_method(mtt, card, opts)
        evaluate_method(create_method("mtt", zca=True, num_experts=2, expert_train_epochs=3, iterations=3, max_start_epoch=1),
                        card, opts)  # another budget, the same experts and ZCA
    assert len(rows) == 2
    assert caplog.text.count("fitting ZCA on all of digits") == 1, caplog.text
    banks = list((opts.cache_dir / "experts").iterdir())
    assert len(banks) == 1 and len(list(banks[0].glob("expert_*.safetensors"))) == 2
    assert caplog.text.count("expert 0 of 2") == 1 and caplog.text.count("expert 1 of 2") == 1
    train = load_dataset("digits")
    assert zca_path(train, pending_zca_space(train, PLAIN).zca.key, opts.cache_dir).is_file()
