"""Protocol cards: versioned TOML recipes in protocols/, loaded, validated and hashed.

A card fixes everything an evaluation depends on. Its hash is taken over the parsed content
(canonical JSON), so comments and formatting do not change it but any value does. Overrides
from the command line (fewer epochs, say) produce a different hash and are recorded, so such
rows are never mixed with full-protocol rows on the leaderboard.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from ddbench.errors import DDBenchError

LABEL_MODES = ("hard", "soft", "regression", "none")
# supervised: fresh networks trained with the card's recipe. dd-native: DD's own regime, fresh
# networks trained with exactly the set's learned steps and step sizes (the recipe is unused).
# ssl-transfer: an encoder pre-trained on the set, then probed with few labels on downstream sets.
KINDS = ("supervised", "dd-native", "ssl-transfer")
INITS = ("", "random", "fixed")


@dataclass(frozen=True)
class TrainRecipe:
    """How a fresh network is trained on a distilled set (the DC/MTT `evaluate_synset` loop)."""

    epochs: int = 1000  # the loop runs epochs + 1 passes, as range(Epoch + 1) in the original
    batch_size: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay_factor: float = 0.1  # applied once, after pass epochs // 2 + 1, with fresh momentum
    use_learned_lr: bool = True  # a set's learned lr replaces `lr` where the set carries one
    augment: str = "dsa"  # "dsa" or "none"
    dsa_strategy: str = "color_crop_cutout_flip_scale_rotate"

    @property
    def decay_after(self) -> int:
        return self.epochs // 2 + 1


@dataclass(frozen=True)
class PretrainRecipe:
    """ssl-transfer: how an encoder is pre-trained on a set (MKDT's pretrain.py)."""

    epochs: int = 20
    batch_size: int = 256
    lr: float = 0.1  # used when the set carries no learned lr (real subsets)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    use_learned_lr: bool = True
    bt_epochs: int = 20  # images-only sets are pre-trained with Barlow Twins for this many epochs


@dataclass(frozen=True)
class ProbeRecipe:
    """ssl-transfer: the linear probe on frozen, flattened, standardised features."""

    fractions: tuple[float, ...] = (0.01, 0.05, 0.1, 0.5)
    l2: float = 1e-3
    max_iter: int = 500  # L-BFGS iterations (strong Wolfe line search), enough to converge
    downstream: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProtocolCard:
    id: str
    version: int
    kind: str
    dataset: str
    ipc: int
    archs: tuple[str, ...]
    seeds: int
    train: TrainRecipe
    labels: str = "hard"
    normalize: bool = True
    zca: bool = False
    quick: bool = False
    init: str = ""  # dd-native cards: "random" (fresh networks per seed) or "fixed" (the set's own init)
    budget: int = 0  # ssl-transfer cards: images in the set (they have no per-class IPC)
    pretrain: PretrainRecipe | None = None
    probe: ProbeRecipe | None = None
    baselines: tuple[str, ...] = ()  # methods evaluated beside any method on this card
    description: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)

    def content(self) -> dict[str, Any]:
        """Everything that decides one row's result. Left out: the description, and which archs and how
        many seeds a sweep runs by default (each row names its arch and seed), so adding an arch to a
        card does not orphan its rows."""
        data = dataclasses.asdict(self)
        for key in ("description", "archs", "seeds"):
            data.pop(key)
        for key, empty in (("init", ""), ("budget", 0), ("pretrain", None), ("probe", None), ("baselines", ())):
            if data[key] == empty:
                data.pop(key)  # fields of other kinds stay out, so each kind's hashes stay as they were
        data.pop("baselines", None)  # which baselines print beside a method does not change any row
        return data

    @property
    def hash(self) -> str:
        blob = json.dumps(self.content(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def standard(self) -> bool:
        return not self.overrides

    def with_overrides(self, **changes: Any) -> "ProtocolCard":
        """A copy with recipe values changed (e.g. epochs=300); the change is recorded in `overrides`."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        train_fields = {f.name for f in dataclasses.fields(TrainRecipe)}
        card_fields = {"archs", "seeds", "labels", "normalize", "zca"}
        train_changes = {k: v for k, v in changes.items() if k in train_fields}
        card_changes = {k: v for k, v in changes.items() if k in card_fields}
        unknown = set(changes) - train_fields - card_fields
        if unknown:
            raise DDBenchError(f"cannot override {sorted(unknown)} of a protocol card")
        recorded = {k: v for k, v in changes.items() if k != "seeds"}  # fewer seeds = fewer rows, same recipe
        if "archs" in recorded:
            recorded.pop("archs")  # each row names its arch; choosing archs does not change a row's recipe
        new_train = dataclasses.replace(self.train, **train_changes)
        if "archs" in card_changes:
            card_changes["archs"] = tuple(card_changes["archs"])
        return dataclasses.replace(self, train=new_train, overrides={**self.overrides, **recorded}, **card_changes)


def _cards_dir():
    return resources.files("ddbench.protocols")


def _parse(data: dict[str, Any], origin: str) -> ProtocolCard:
    data.setdefault("ipc", 0)  # ssl-transfer cards size their sets by `budget`
    try:
        train = TrainRecipe(**data.pop("train", {}))
        pretrain = PretrainRecipe(**data.pop("pretrain")) if "pretrain" in data else None
        probe = None
        if "probe" in data:
            raw = data.pop("probe")
            probe = ProbeRecipe(**{**raw, "fractions": tuple(raw.get("fractions", ProbeRecipe.fractions)),
                                   "downstream": tuple(raw.get("downstream", ()))})
        card = ProtocolCard(**{**data, "archs": tuple(data.get("archs", ())), "train": train, "pretrain": pretrain,
                               "probe": probe, "baselines": tuple(data.get("baselines", ()))})
    except TypeError as exc:
        raise DDBenchError(f"protocol card {origin} is malformed: {exc}") from None
    if card.kind not in KINDS:
        raise DDBenchError(f"protocol card {origin}: kind must be one of {KINDS}, got '{card.kind}'")
    if card.init not in INITS or (card.kind == "dd-native") != bool(card.init):
        raise DDBenchError(f"protocol card {origin}: dd-native cards need init = random or fixed; other cards none")
    if card.labels not in LABEL_MODES:
        raise DDBenchError(f"protocol card {origin}: labels must be one of {LABEL_MODES}, got '{card.labels}'")
    if card.kind == "ssl-transfer":
        if card.budget < 1 or card.pretrain is None or card.probe is None or not card.probe.downstream:
            raise DDBenchError(f"protocol card {origin}: ssl-transfer cards need budget, [pretrain] and [probe] with downstream sets")
    elif card.ipc < 1:
        raise DDBenchError(f"protocol card {origin}: ipc must be positive")
    if card.seeds < 1 or not card.archs or card.train.epochs < 0:
        raise DDBenchError(f"protocol card {origin}: seeds and archs must be positive / non-empty")
    return card


def _read(text: str, origin: str) -> ProtocolCard:
    try:
        return _parse(tomllib.loads(text), origin)
    except tomllib.TOMLDecodeError as exc:
        raise DDBenchError(f"protocol card {origin} is not valid TOML: {exc}") from None


def list_protocols(pattern: str = "*") -> list[str]:
    names = [p.name[:-5] for p in _cards_dir().iterdir() if p.name.endswith(".toml") and p.name != "published.toml"]
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def load_protocol(name_or_path: str) -> ProtocolCard:
    """A card by id (e.g. 'cifar10-ipc10') or by path to a .toml file."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") and path.is_file():
        return _read(path.read_text(), str(path))
    card_file = _cards_dir() / f"{name_or_path}.toml"
    if not card_file.is_file():
        close = [n for n in list_protocols() if name_or_path.split("-")[0] in n][:6]
        hint = f"; close: {', '.join(close)}" if close else ""
        raise DDBenchError(f"unknown protocol '{name_or_path}'{hint}; see `ddbench list protocols`")
    card = _read(card_file.read_text(), card_file.name)
    if card.id != name_or_path:
        raise DDBenchError(f"protocol card {card_file.name} declares id '{card.id}'; the id must match the file name")
    return card


def quick_protocol() -> ProtocolCard:
    """The card `ddbench evaluate` runs when no --protocol is given."""
    return load_protocol("digits-quick")
