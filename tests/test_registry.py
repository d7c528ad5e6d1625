"""The method registry: decorator, create, wildcard listing, config layers, entry points."""
from __future__ import annotations

import pytest
import torch

from ddbench.core import registry as core_registry
from ddbench.core.errors import DDBenchError
from ddbench.distill import registry
from ddbench.distill.method import Method
from ddbench.distill.registry import create_method, list_methods, register_method
from ddbench.kinds import load_protocol


def test_builtin_methods_are_listed_with_wildcards():
    names = list_methods()
    assert {"random", "herding", "kcenter", "forgetting"} <= set(names)
    assert list_methods("k*") == ["kcenter", "kd-highloss", "kd-random"]


def test_config_layers_and_coercion():
    @register_method("layered-test")
    class Layered(Method):
        default_cfg = {"steps": 10, "lr": 0.1, "flag": False}
        protocol_cfg = {"cifar10-*": {"steps": 500}}

    m = create_method("layered-test", lr="0.5", flag="true")
    assert m.config_for(load_protocol("mnist-ipc1")) == {"steps": 10, "lr": 0.5, "flag": True}
    assert m.config_for(load_protocol("cifar10-ipc10"))["steps"] == 500
    assert create_method("layered-test", steps="7").config_for(load_protocol("cifar10-ipc10"))["steps"] == 7
    with pytest.raises(DDBenchError, match="has no option"):
        create_method("layered-test", stepz=1)
    with pytest.raises(DDBenchError, match="not a valid int"):
        create_method("layered-test", steps="many")


def test_a_card_that_includes_another_gets_its_settings_unless_it_has_its_own(tmp_path):
    mtt = create_method("mtt")
    base, adv = load_protocol("mnist-ipc1"), load_protocol("mnist-ipc1-adv")
    assert adv.lineage == ("mnist-ipc1", "mnist-ipc1-adv") and base.lineage == ("mnist-ipc1",)
    assert mtt.config_for(adv) == mtt.config_for(base) != mtt.config_for(load_protocol("mnist-ipc10"))
    assert mtt.config_for(load_protocol("cifar10-ipc1-privacy"))["zca"] is True  # cifar10-ipc1's table

    @register_method("lineage-test")
    class Lineage(Method):
        default_cfg = {"steps": 10}
        protocol_cfg = {"mnist-ipc1-adv": {"steps": 3}, "mnist-ipc1": {"steps": 500}}  # the card's own applies last

    assert create_method("lineage-test").config_for(adv)["steps"] == 3
    assert create_method("lineage-test").config_for(base)["steps"] == 500
    card = tmp_path / "mine.toml"
    card.write_text('include = "mnist-ipc1-adv"\nid = "mine"\nversion = 1\n')
    assert load_protocol(str(card)).lineage == ("mnist-ipc1", "mnist-ipc1-adv", "mine")
    assert load_protocol(str(card)).hash != adv.hash
    card.write_text('include = "mnist-ipc1"\nid = "mine"\nversion = 1\nincludes = ["cifar10-ipc1"]\n')
    with pytest.raises(DDBenchError, match="unknown key.*includes"):
        load_protocol(str(card))


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(DDBenchError, match="unknown method 'nope'; known: .*random"):
        create_method("nope")


def test_function_methods_and_entry_points(monkeypatch):
    def from_plugin(train, ipc, ctx):
        """A plug-in method from another package."""
        idx = torch.cat([train.indices_of_class(c)[:ipc] for c in range(train.num_classes)])
        return ctx.subset_set(train, idx)

    class FakeEntryPoint:
        name = "plugin-first"

        def load(self):
            return from_plugin

    monkeypatch.setattr(core_registry, "entry_points", lambda group: [FakeEntryPoint()] if group == "ddbench.methods" else [])
    monkeypatch.setattr(registry.METHODS, "_loaded", False)
    assert "plugin-first" in list_methods()
    assert registry.method_summary("plugin-first") == "A plug-in method from another package."
    registry.unregister_method("plugin-first")


def test_registering_a_name_twice_raises():
    @register_method("twice-test")
    def first(train, ipc, ctx):
        """First."""

    with pytest.raises(DDBenchError, match="already registered"):
        @register_method("twice-test")
        def second(train, ipc, ctx):
            """Second."""
    with pytest.raises(DDBenchError, match="already registered"):
        @register_method
        class Random(Method):  # a built-in's name
            name = "random"


def test_methods_registered_by_earlier_tests_do_not_leak():
    """The autouse fixture restores the registry: the README's and this file's test methods are gone."""
    assert not {"layered-test", "twice-test", "class-means", "plugin-first"} & set(list_methods())


def test_a_plugin_that_exits_at_import_does_not_kill_ddbench(monkeypatch, capsys, caplog):
    from ddbench.cli import main

    class ExitingEntryPoint:
        name = "exits-on-import"

        def load(self):
            raise SystemExit(3)

    monkeypatch.setattr(core_registry, "entry_points", lambda group: [ExitingEntryPoint()] if group == "ddbench.methods" else [])
    monkeypatch.setattr(registry.METHODS, "_loaded", False)
    assert main(["list", "methods"]) == 0
    assert "random" in capsys.readouterr().out and "exits-on-import" not in list_methods()
    assert "could not load method entry point 'exits-on-import'" in caplog.text


def test_methods_import_no_other_method():
    """Shared pieces live in ddbench's own modules (realtrain, kd, coreset): a method file never imports another,
    so each reads top to bottom beside its paper and can be removed alone."""
    import re
    from pathlib import Path

    methods = Path(__file__).resolve().parents[1] / "methods"
    offenders = [p.name for p in methods.glob("*.py") if re.search(r"^\s*(from|import) ddbench\.methods", p.read_text(), re.M)]
    assert offenders == []


PLUGIN_OBJECT = object()


def test_the_one_registry_pattern(monkeypatch, caplog):
    """Names, aliases, refusal of a second entry, lazy "module:attr" entries, entry-point plug-ins (a broken one,
    even one raising KeyboardInterrupt, skipped with a warning) and "did you mean": the same for all five registries."""
    from ddbench.core.registry import Registry
    from ddbench.data import DATASETS
    from ddbench.interop.formats import FORMATS
    from ddbench.kinds import KINDS
    from ddbench.sweep.registry import EXECUTORS

    assert all(isinstance(r, Registry) for r in (registry.METHODS, KINDS, DATASETS, FORMATS, EXECUTORS))
    assert {"supervised", "dd-native", "ssl-transfer"} <= set(KINDS.names()) and "fashion-mnist" in DATASETS

    class Plugin:
        name = "from-plugin"

        def load(self):
            return PLUGIN_OBJECT

    class Broken:
        name = "broken"

        def load(self):
            raise KeyboardInterrupt

    monkeypatch.setattr(core_registry, "entry_points", lambda group: [Plugin(), Broken()] if group == "test.group" else [])
    things = Registry("thing", entry_points="test.group")
    things.register("alpha", "ddbench.core.errors:DDBenchError", aliases=("a",))  # lazy: imported on first get
    assert things.names() == ["alpha", "from-plugin"] and "broken" not in things
    assert "could not load thing entry point 'broken' (KeyboardInterrupt" in caplog.text
    assert things.get("A") is DDBenchError and things.get("from-plugin") is PLUGIN_OBJECT
    with pytest.raises(DDBenchError, match="already registered"):
        things.register("alpha", object())
    with pytest.raises(DDBenchError, match="unknown thing 'alpah'; did you mean 'alpha'"):
        things.get("alpah")
