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
import math
import re
import types
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import tomllib

from ddbench.errors import DDBenchError

LabelMode = Literal["hard", "soft", "regression", "none"]
Kind = Literal["supervised", "dd-native", "ssl-transfer"]
Init = Literal["", "random", "fixed"]
Precision = Literal["fp32", "tf32", "bf16"]  # see ddbench/precision.py
LABEL_MODES: tuple[LabelMode, ...] = get_args(LabelMode)
# supervised: fresh networks trained with the card's recipe. dd-native: DD's own regime, fresh
# networks trained with exactly the set's learned steps and step sizes (the recipe is unused).
# ssl-transfer: an encoder pre-trained on the set, then probed with few labels on downstream sets.
KINDS: tuple[Kind, ...] = get_args(Kind)
INITS: tuple[Init, ...] = get_args(Init)


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
    kind: str  # a registered protocol kind (ddbench.kinds): supervised, dd-native, ssl-transfer, or a plug-in's
    dataset: str
    ipc: int
    archs: tuple[str, ...]
    seeds: int
    train: TrainRecipe
    labels: LabelMode = "hard"
    normalize: bool = True
    zca: bool = False
    quick: bool = False  # a smoke-test card: never published on the leaderboard
    mean: tuple[float, ...] = ()  # normalisation constants of the card's reference code; () = the dataset's
    std: tuple[float, ...] = ()
    precision: Precision = "fp32"  # fp32 (the field's tables) or tf32: part of the protocol
    init: Init = ""  # dd-native cards: "random" (fresh networks per seed) or "fixed" (the set's own init)
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
        for key, empty in (("init", ""), ("budget", 0), ("pretrain", None), ("probe", None), ("baselines", ()),
                           ("precision", "fp32"), ("mean", ()), ("std", ())):
            if data[key] == empty:
                data.pop(key)  # fields of other kinds, and defaults added later, stay out: old hashes stay as they were
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
        card_fields = {"archs", "seeds", "labels", "normalize", "zca", "precision"}
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
        card = dataclasses.replace(self, train=new_train, overrides={**self.overrides, **recorded}, **card_changes)
        _check_card(card, f"'{self.id}' with {recorded or changes}")
        return card


def _cards_dir():
    return resources.files("ddbench.protocols")


# Upper bounds on what a card or a flag may ask for: past them a typo (seeds = 100000, epochs 1e12)
# would fill the disk or never end, so it is refused before any work.
MAX_SEEDS = 1000
MAX_EPOCHS = 100_000
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")


def _typed(value: Any, hint: Any, where: str) -> Any:
    """`value` checked against a field's type hint (bool, int, float, str, tuple[...] or a union with None)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return _typed(value, options[0], where)
    if origin is Literal:
        if value not in args:
            raise DDBenchError(f"{where} must be one of {', '.join(repr(a) for a in args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise DDBenchError(f"{where} must be a list, got {value!r}")
        return tuple(_typed(v, args[0], where) for v in value)
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        name = getattr(hint, "__name__", str(hint))
        raise DDBenchError(f"{where} must be {'a finite ' if hint is float else 'a '}{name}, got {value!r}")
    return value


def _section(cls: type, raw: Any, where: str) -> dict[str, Any]:
    """The fields of dataclass `cls` from a TOML table: unknown keys refused, every value type-checked."""
    if not isinstance(raw, dict):
        raise DDBenchError(f"{where} must be a table")
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)} - {"overrides"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise DDBenchError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return {k: _typed(v, hints[k], f"{where}: {k}") for k, v in raw.items()}


def _need(ok: bool, origin: str, message: str) -> None:
    if not ok:
        raise DDBenchError(f"protocol card {origin}: {message}")


def _check_train(t: TrainRecipe, origin: str) -> None:
    from ddbench.augment import GROUPS

    _need(0 <= t.epochs <= MAX_EPOCHS, origin, f"train.epochs must be 0..{MAX_EPOCHS}, got {t.epochs}")
    _need(t.batch_size >= 1, origin, f"train.batch_size must be at least 1, got {t.batch_size}")
    _need(t.lr > 0, origin, f"train.lr must be positive, got {t.lr}")
    _need(0 <= t.momentum < 1, origin, f"train.momentum must be in [0, 1), got {t.momentum}")
    _need(t.weight_decay >= 0, origin, f"train.weight_decay must be 0 or more, got {t.weight_decay}")
    _need(0 < t.lr_decay_factor <= 1, origin, f"train.lr_decay_factor must be in (0, 1], got {t.lr_decay_factor}")
    _need(t.augment in ("dsa", "none"), origin, f"train.augment must be 'dsa' or 'none', got {t.augment!r}")
    ops = [g for g in t.dsa_strategy.split("_") if g and g.lower() != "none"]
    bad = sorted(set(ops) - set(GROUPS))
    _need(not bad, origin, f"train.dsa_strategy has unknown operation(s) {', '.join(bad)}; known: {', '.join(GROUPS)}")
    _need(t.augment != "dsa" or bool(ops), origin, "train.augment = 'dsa' needs at least one operation in dsa_strategy")


def _check_ssl(card: ProtocolCard, origin: str) -> None:
    from ddbench.data import list_datasets

    pre, probe = card.pretrain, card.probe
    _need(card.budget >= 1 and pre is not None and probe is not None and bool(probe.downstream), origin,
          "ssl-transfer cards need budget, [pretrain] and [probe] with downstream sets")
    assert pre is not None and probe is not None
    _need(0 <= pre.epochs <= MAX_EPOCHS and 0 <= pre.bt_epochs <= MAX_EPOCHS, origin, f"pretrain epochs must be 0..{MAX_EPOCHS}")
    _need(pre.batch_size >= 1 and pre.lr > 0 and 0 <= pre.momentum < 1 and pre.weight_decay >= 0, origin,
          "pretrain needs batch_size ≥ 1, lr > 0, momentum in [0, 1) and weight_decay ≥ 0")
    _need(all(0 < f <= 1 for f in probe.fractions) and bool(probe.fractions), origin, "probe.fractions must lie in (0, 1]")
    _need(probe.l2 >= 0 and 1 <= probe.max_iter <= 100_000, origin, "probe needs l2 ≥ 0 and max_iter 1..100000")
    unknown = sorted(set(probe.downstream) - set(list_datasets()))
    _need(not unknown, origin, f"probe.downstream names unknown dataset(s) {', '.join(unknown)}; see `ddbench list datasets`")


def _check_card(card: ProtocolCard, origin: str) -> None:
    """Every value of a loaded card within its range and every name known, before any work starts."""
    import timm

    from ddbench.data import list_datasets
    from ddbench.models import create_network  # noqa: F401  (registers ddbench's networks into timm)

    _need(bool(_ID.match(card.id)), origin, f"id must be lower-case letters, digits, '.', '_' or '-', got {card.id!r}")
    _need(card.version >= 1, origin, f"version must be 1 or more, got {card.version}")
    from ddbench.kinds import kind_names

    _need(card.kind in kind_names(), origin, f"kind must be one of {kind_names()}, got '{card.kind}'")
    _need(card.init in INITS and (card.kind == "dd-native") == bool(card.init), origin,
          "dd-native cards need init = random or fixed; other cards none")
    _need(card.labels in LABEL_MODES, origin, f"labels must be one of {LABEL_MODES}, got '{card.labels}'")
    _need(card.precision in PRECISIONS, origin, f"precision must be one of {PRECISIONS}, got '{card.precision}'")
    _need(card.dataset in list_datasets(), origin, f"dataset '{card.dataset}' is unknown; see `ddbench list datasets`")
    _need(1 <= card.seeds <= MAX_SEEDS, origin, f"seeds must be 1..{MAX_SEEDS}, got {card.seeds}")
    _need(bool(card.archs), origin, "archs must name at least one architecture")
    unknown = [a for a in card.archs if not timm.is_model(a)]
    _need(not unknown, origin, f"unknown architecture(s) {', '.join(unknown)}; see `ddbench list archs`")
    _need(len(card.mean) == len(card.std) and all(v > 0 for v in card.std), origin,
          "mean and std must be given together, one value per channel, std positive")
    _check_train(card.train, origin)
    if card.kind == "ssl-transfer":
        _check_ssl(card, origin)
    else:
        _need(1 <= card.ipc <= 100_000, origin, f"ipc must be 1..100000, got {card.ipc}")


def _parse(data: dict[str, Any], origin: str) -> ProtocolCard:
    data.setdefault("ipc", 0)  # ssl-transfer cards size their sets by `budget`
    where = f"protocol card {origin}"
    required = {"id", "version", "kind", "dataset", "archs", "seeds"}
    missing = sorted(required - set(data))
    if missing:
        raise DDBenchError(f"{where} is malformed: missing key(s) {', '.join(missing)}")
    train = TrainRecipe(**_section(TrainRecipe, data.pop("train", {}), f"{where} [train]"))
    pretrain = PretrainRecipe(**_section(PretrainRecipe, data.pop("pretrain"), f"{where} [pretrain]")) if "pretrain" in data else None
    probe = ProbeRecipe(**_section(ProbeRecipe, data.pop("probe"), f"{where} [probe]")) if "probe" in data else None
    fields = _section(ProtocolCard, data, where)
    card = ProtocolCard(**{**fields, "train": train, "pretrain": pretrain, "probe": probe})
    _check_card(card, origin)
    return card


def _toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DDBenchError(f"protocol card {origin} is not valid TOML: {exc}") from None


def _with_include(data: dict[str, Any], origin: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """`include = "cifar10-ipc10"`: start from that built-in card's keys, then apply this card's (sections
    merge key by key). The included card's id, version and description never carry over."""
    base_id = data.pop("include", None)
    if base_id is None:
        return data
    if not isinstance(base_id, str) or base_id in seen or base_id not in list_protocols():
        raise DDBenchError(f"protocol card {origin}: include = {base_id!r} names no built-in card (or includes itself)")
    base = _with_include(_toml((_cards_dir() / f"{base_id}.toml").read_text(), f"{base_id}.toml"), origin, (*seen, base_id))
    for key in ("id", "version", "description"):
        base.pop(key, None)
    merged = {**base, **data}
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = {**base[key], **value}
    return merged


def _read(text: str, origin: str) -> ProtocolCard:
    return _parse(_with_include(_toml(text, origin), origin), origin)


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
