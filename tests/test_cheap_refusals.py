"""Names are checked from light indexes: a card, an --arch or a --method with a typo is refused without
importing the model zoo (timm + torchvision), and the architecture index is timm's registry (issue 22)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ddbench.core.errors import DDBenchError
from ddbench.models import index

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import json, sys
from ddbench.core.errors import DDBenchError
from ddbench.distill.registry import create_method
from ddbench.kinds import load_protocol
from ddbench.models import expand_archs
refused = []
for attempt in (lambda: load_protocol(sys.argv[1]), lambda: expand_archs("convnett"), lambda: create_method("randm")):
    try:
        attempt()
    except DDBenchError as exc:
        refused.append(str(exc))
print(json.dumps({"refused": refused, "timm": "timm" in sys.modules, "torchvision": "torchvision" in sys.modules}))
"""


def test_typos_are_refused_without_importing_the_model_zoo(tmp_path):
    card = (ROOT / "protocols" / "mnist-ipc10.toml").read_text()
    typo = tmp_path / "typo.toml"
    typo.write_text(card.replace('archs = ["convnet"]', 'archs = ["convnett"]'))
    assert typo.read_text() != card
    out = subprocess.run([sys.executable, "-c", _PROBE, str(typo)], capture_output=True, text=True, check=True, cwd=tmp_path)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["refused"]) == 3, result
    assert "unknown architecture(s) convnett" in result["refused"][0]
    assert "did you mean convnet" in result["refused"][1]
    assert "unknown method 'randm'" in result["refused"][2]
    assert not result["timm"] and not result["torchvision"], "a refusal imported the model zoo"


def test_the_arch_index_is_the_installed_timms_registry():
    import timm

    import ddbench.models.factory  # noqa: F401  (registers ddbench's networks)

    assert index.index_is_current(), (f"ddbench/models/arch_index.txt was written from timm {index._index()[0]}, "
                                      f"installed {index.installed_timm()}: rewrite it (see ddbench/models/index.py)")
    assert index.arch_names() == frozenset(timm.list_models())
    assert index.is_arch("convnetd4") and index.is_arch("resnet18.a1_in1k") and not index.is_arch("convnett")


def test_another_timm_asks_timm_itself_for_names_the_index_lacks(monkeypatch):
    import timm

    monkeypatch.setattr(index, "installed_timm", lambda: "0.0.0-other")
    monkeypatch.setattr(timm, "list_models", lambda *a, **k: ["convnet", "a_new_model"])
    assert index.is_arch("a_new_model")  # not in the index: the live registry decides
    assert index.is_arch("resnet18")  # in the index: known without asking
    assert not index.is_arch("convnett")
    with pytest.raises(DDBenchError, match="unknown architecture 'convnett'"):
        index.expand_archs("convnett")
