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
from typing import Any, Callable, Literal, Union, get_args, get_origin, get_type_hints

import tomllib

from ddbench.core.errors import DDBenchError
from ddbench.core.paths import check_input_file
from ddbench.core.registry import suggest
from ddbench.engine.recipes import TrainRecipe
from ddbench.store.rows import LABEL_MODES, LabelMode

Precision = Literal["fp32", "tf32", "bf16"]  # see ddbench/engine/precision.py
ParamsFor = Callable[[str], "type | None"]  # a kind's name -> the dataclass of its own card section (None: it has none)


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
    precision: Precision = "fp32"  # fp32 (the field's tables), tf32 or bf16: part of the protocol
    description: str = ""
    params: Any = None  # the kind's own section: a dataclass its kind declares (ddbench.kinds), None if it has none
    overrides: dict[str, Any] = field(default_factory=dict)
    includes: tuple[str, ...] = ()  # the built-in cards it starts from (`include =`), the outermost first; not hashed

    def content(self) -> dict[str, Any]:
        """Everything that decides one row's result. Left out: the description, and which archs and how
        many seeds a sweep runs by default (each row names its arch and seed), so adding an arch to a
        card does not orphan its rows."""
        data = dataclasses.asdict(self)
        for key in ("description", "archs", "seeds", "params", "includes"):
            data.pop(key)
        for key, empty in (("precision", "fp32"), ("mean", ()), ("std", ())):
            if data[key] == empty:
                data.pop(key)  # defaults added later stay out: old hashes stay as they were
        if self.params is not None:  # the kind's section, flat beside the common keys (as cards were hashed before)
            exempt = getattr(type(self.params), "HASH_EXEMPT", ())  # e.g. which baselines print beside a method
            data.update({k: v for k, v in dataclasses.asdict(self.params).items() if k not in exempt})
        return data

    @property
    def lineage(self) -> tuple[str, ...]:
        """The ids of the built-in cards it starts from, then its own: what a method's per-card settings match
        (mnist-ipc1-adv gets the settings of mnist-ipc1, unless it has its own)."""
        return (*self.includes, self.id)

    def param(self, name: str, default: Any = None) -> Any:
        """A value of the kind's own section (`default` when the kind has no such parameter)."""
        return getattr(self.params, name, default)

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
MAX_CARD_BYTES = 1 << 20
MAX_EPOCHS = 100_000
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")


def _typed(value: Any, hint: Any, where: str) -> Any:
    """`value` checked against a field's type hint (bool, int, float, str, tuple[...] or a union with None)."""
    origin, args = get_origin(hint), get_args(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return hint(**_section(hint, value, where))
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
    known = {f.name for f in dataclasses.fields(cls)} - _DERIVED
    unknown = sorted(set(raw) - known)
    if unknown:
        raise DDBenchError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return {k: _typed(v, hints[k], f"{where}: {k}") for k, v in raw.items()}


def _need(ok: bool, origin: str, message: str) -> None:
    if not ok:
        raise DDBenchError(f"protocol card {origin}: {message}")


def _check_train(t: TrainRecipe, origin: str) -> None:
    from ddbench.engine.augment import GROUPS

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


def _check_card(card: ProtocolCard, origin: str) -> None:
    """Every value of a loaded card within its range and every name known, before any work starts."""
    from ddbench.data import list_datasets
    from ddbench.models import is_arch  # the light index: a typo is refused without importing timm

    _need(bool(_ID.match(card.id)), origin, f"id must be lower-case letters, digits, '.', '_' or '-', got {card.id!r}")
    _need(card.version >= 1, origin, f"version must be 1 or more, got {card.version}")
    _need(card.labels in LABEL_MODES, origin, f"labels must be one of {LABEL_MODES}, got '{card.labels}'")
    _need(card.precision in PRECISIONS, origin, f"precision must be one of {PRECISIONS}, got '{card.precision}'")
    _need(card.dataset in list_datasets(), origin, f"dataset '{card.dataset}' is unknown; see `ddbench list datasets`")
    _need(1 <= card.seeds <= MAX_SEEDS, origin, f"seeds must be 1..{MAX_SEEDS}, got {card.seeds}")
    _need(bool(card.archs), origin, "archs must name at least one architecture")
    unknown = [a for a in card.archs if not is_arch(a)]
    _need(not unknown, origin, f"unknown architecture(s) {', '.join(unknown)}; see `ddbench list archs`")
    _need(len(card.mean) == len(card.std) and all(v > 0 for v in card.std), origin,
          "mean and std must be given together, one value per channel, std positive")
    _check_train(card.train, origin)


_DERIVED = frozenset({"params", "overrides", "includes"})  # set by the loader, never written in a card
COMMON_KEYS = frozenset(f.name for f in dataclasses.fields(ProtocolCard)) - _DERIVED


def _parse(data: dict[str, Any], origin: str, params_for: ParamsFor, includes: tuple[str, ...] = ()) -> ProtocolCard:
    data.setdefault("ipc", 0)  # kinds that size their sets otherwise (ssl-transfer: `budget`) have no per-class IPC
    where = f"protocol card {origin}"
    required = {"id", "version", "kind", "dataset", "archs", "seeds"}
    missing = sorted(required - set(data))
    if missing:
        raise DDBenchError(f"{where} is malformed: missing key(s) {', '.join(missing)}")
    if not isinstance(data["kind"], str):
        raise DDBenchError(f"{where}: kind must be a str, got {data['kind']!r}")
    try:
        params_cls = params_for(data["kind"])  # an unknown kind is refused here, with suggestions
    except DDBenchError as exc:
        raise DDBenchError(f"{where}: {exc}") from None
    own = {k: data.pop(k) for k in list(data) if k not in COMMON_KEYS and k != "train"}
    train = TrainRecipe(**_section(TrainRecipe, data.pop("train", {}), f"{where} [train]"))
    fields = _section(ProtocolCard, data, where)
    if params_cls is None:
        if own:
            raise DDBenchError(f"{where}: unknown key(s) {', '.join(sorted(own))}; known: {', '.join(sorted(COMMON_KEYS))}")
        params = None
    else:
        kind_keys = {f.name for f in dataclasses.fields(params_cls)}
        unknown = sorted(set(own) - kind_keys)
        if unknown:
            raise DDBenchError(f"{where}: unknown key(s) {', '.join(unknown)}; known: "
                               f"{', '.join(sorted(COMMON_KEYS | kind_keys))}")
        missing = sorted(f.name for f in dataclasses.fields(params_cls)
                         if f.name not in own and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        if missing:
            raise DDBenchError(f"{where}: {data['kind']} cards need {', '.join(missing)}")
        params = params_cls(**_section(params_cls, own, f"{where} ({data['kind']})"))
    card = ProtocolCard(**{**fields, "train": train, "params": params, "includes": includes})
    _check_card(card, origin)
    return card


def _text(path: Path, origin: str) -> str:
    """A card file's text: a regular file of at most MAX_CARD_BYTES, in UTF-8 (one line otherwise)."""
    check_input_file(path, "protocol card")
    if path.stat().st_size > MAX_CARD_BYTES:
        raise DDBenchError(f"protocol card {origin} is {path.stat().st_size} bytes; a card is at most {MAX_CARD_BYTES}")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DDBenchError(f"protocol card {origin} is not valid UTF-8 (byte {exc.start})") from None


def _toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DDBenchError(f"protocol card {origin} is not valid TOML: {exc}") from None


def _with_include(data: dict[str, Any], origin: str, seen: tuple[str, ...] = ()) -> tuple[dict[str, Any], tuple[str, ...]]:
    """`include = "cifar10-ipc10"`: start from that built-in card's keys, then apply this card's (sections
    merge key by key). The included card's id, version and description never carry over. Returns the merged keys
    and the ids of the cards included, the outermost first."""
    base_id = data.pop("include", None)
    if base_id is None:
        return data, ()
    if not isinstance(base_id, str) or base_id in seen or base_id not in list_protocols():
        raise DDBenchError(f"protocol card {origin}: include = {base_id!r} names no built-in card (or includes itself)")
    base, chain = _with_include(_toml(_text(Path(str(_cards_dir() / f"{base_id}.toml")), f"{base_id}.toml"),
                                      f"{base_id}.toml"), origin, (*seen, base_id))
    for key in ("id", "version", "description"):
        base.pop(key, None)
    merged = {**base, **data}
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = {**base[key], **value}
    return merged, (*chain, base_id)


def _read(text: str, origin: str, params_for: ParamsFor) -> ProtocolCard:
    data, includes = _with_include(_toml(text, origin), origin)
    return _parse(data, origin, params_for, includes)


def list_protocols(pattern: str = "*") -> list[str]:
    names = [p.name[:-5] for p in _cards_dir().iterdir() if p.name.endswith(".toml") and p.name != "published.toml"]
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def read_card(name_or_path: str, params_for: ParamsFor) -> ProtocolCard:
    """A card by id (e.g. 'cifar10-ipc10') or by path to a .toml file, parsed and checked except for what only its
    kind knows: `params_for(kind)` gives the kind's section dataclass. Use ddbench.kinds.load_protocol, which
    also runs the kind's own checks."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") and (path.exists() or path.is_symlink()):
        return _read(_text(path, str(path)), str(path), params_for)
    card_file = _cards_dir() / f"{name_or_path}.toml"
    if not _ID.match(name_or_path) or not card_file.is_file():  # an id names a built-in card, never a path (../x)
        shown = name_or_path if len(name_or_path) <= 80 else name_or_path[:77] + "..."
        hint = suggest(name_or_path, list_protocols())
        if not hint:
            close = [n for n in list_protocols() if name_or_path.split("-")[0] in n][:6]
            hint = f"; close: {', '.join(close)}" if close else ""
        raise DDBenchError(f"unknown protocol '{shown}'{hint}; see `ddbench list protocols`")
    card = _read(_text(Path(str(card_file)), card_file.name), card_file.name, params_for)
    if card.id != name_or_path:
        raise DDBenchError(f"protocol card {card_file.name} declares id '{card.id}'; the id must match the file name")
    return card
