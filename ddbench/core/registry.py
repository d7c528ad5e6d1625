"""One registry pattern for every extension point (methods, protocol kinds, datasets, import formats,
executors), after timm's: register by name, create by name, list with wildcards.

    FORMATS = Registry[ImportFormat]("import format", entry_points="ddbench.formats")
    FORMATS.register("mtt", MttFormat)                     # an object
    FORMATS.register("ray", "ddbench.sweep.ray_executor:RayExecutor")   # lazy: imported on first use
    FORMATS.get("mtt"); FORMATS.names("m*"); "mtt" in FORMATS

A name is registered once (a second, different entry is refused); aliases resolve to their name; an
unknown name is one line with "did you mean" suggestions. Entries given as "module:attr" strings are
imported only when first asked for, so listing names never imports heavy modules. Other packages add
entries through the registry's entry-point group (`[project.entry-points."ddbench.formats"]`); a plug-in
that fails to import (even with SystemExit or KeyboardInterrupt) is skipped with one warning.
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib
import logging
import re
from importlib.metadata import entry_points
from typing import Callable, Generic, Iterator, TypeVar

from ddbench.core.errors import DDBenchError

log = logging.getLogger(__name__)

T = TypeVar("T")


def natural_key(name: str) -> list:
    """Sort key that orders 'ipc2' before 'ipc10'."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def import_object(spec: str) -> object:
    """The object a "package.module:attr" string names."""
    module, _, attr = spec.partition(":")
    obj: object = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def suggest(name: str, known: list[str]) -> str:
    """"; did you mean X?" for a name close to one of `known` (empty when none is)."""
    close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class Registry(Generic[T]):
    """Names → entries of one kind of extension, with aliases, lazy entries and an entry-point group."""

    def __init__(self, what: str, entry_points: str | None = None, on_load: Callable[[], None] | None = None) -> None:
        self.what = what  # "method", "protocol kind", ...: used in messages
        self.group = entry_points
        self._entries: dict[str, T | str] = {}
        self._aliases: dict[str, str] = {}
        self._on_load = on_load  # imports the built-in entries (e.g. every module of ddbench.methods)
        self._loaded = False

    # -------------------------------------------------------------------------------- registering
    def register(self, name: str, entry: T | str, aliases: tuple[str, ...] = ()) -> None:
        """Add `entry` (an object, or a lazy "module:attr" string) under `name` and its `aliases`."""
        key = name.lower()
        if not key:
            raise DDBenchError(f"a {self.what} needs a non-empty name")
        existing = self._entries.get(key)
        if existing is not None and existing is not entry and existing != entry:
            where = existing if isinstance(existing, str) else f"{getattr(existing, '__module__', '?')}." \
                                                                 f"{getattr(existing, '__qualname__', type(existing).__name__)}"
            raise DDBenchError(f"{self.what} name '{key}' is already registered (by {where}); choose another name")
        if key in self._aliases:
            raise DDBenchError(f"{self.what} name '{key}' is already an alias of '{self._aliases[key]}'")
        self._entries[key] = entry
        for alias in aliases:
            self._aliases[alias.lower()] = key

    def unregister(self, name: str) -> None:
        """Remove an entry and its aliases (tests and plug-in reloads); unknown names are ignored."""
        key = name.lower()
        self._entries.pop(key, None)
        self._aliases = {a: n for a, n in self._aliases.items() if n != key}

    def snapshot(self) -> tuple[dict, dict]:
        self._load()
        return dict(self._entries), dict(self._aliases)

    def restore(self, snapshot: tuple[dict, dict]) -> None:
        self._entries, self._aliases = dict(snapshot[0]), dict(snapshot[1])

    # -------------------------------------------------------------------------------- looking up
    def canonical(self, name: str) -> str:
        """The registered name for `name` or one of its aliases; one line with suggestions if unknown."""
        self._load()
        key = name.lower()
        key = self._aliases.get(key, key)
        if key not in self._entries:
            shown = name if len(name) <= 80 else name[:77] + "..."
            known = self.names()
            raise DDBenchError(f"unknown {self.what} '{shown}'{suggest(key, known + list(self._aliases))}; "
                               f"known: {', '.join(known)}")
        return key

    def get(self, name: str) -> T:
        """The entry registered as `name` (or an alias), imported now if it was registered lazily."""
        key = self.canonical(name)
        entry = self._entries[key]
        if isinstance(entry, str):
            entry = import_object(entry)  # type: ignore[assignment]
            self._entries[key] = entry
        return entry  # type: ignore[return-value]

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching the wildcard `pattern`, in natural order (aliases not listed)."""
        self._load()
        return sorted((n for n in self._entries if fnmatch.fnmatch(n, pattern.lower())), key=natural_key)

    def aliases(self) -> dict[str, str]:
        self._load()
        return dict(self._aliases)

    def __contains__(self, name: object) -> bool:
        self._load()
        return isinstance(name, str) and self._aliases.get(name.lower(), name.lower()) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    # -------------------------------------------------------------------------------- plug-ins
    def _load(self) -> None:
        """Import the built-in entries and the entry-point group once."""
        if self._loaded:
            return
        self._loaded = True
        if self._on_load is not None:
            self._on_load()
        if self.group:
            for ep in entry_points(group=self.group):
                self._load_plugin(ep)

    def _load_plugin(self, ep) -> None:
        try:
            obj = ep.load()
        except BaseException as exc:  # noqa: BLE001  (a broken plug-in, even one raising SystemExit or Ctrl-C, must not break ddbench)
            log.warning("could not load %s entry point '%s' (%s: %s); skipped", self.what, ep.name, type(exc).__name__,
                        str(exc)[:200])
            return
        key = ep.name.lower()
        if key in self._entries:
            if self._entries[key] is not obj:
                log.warning("%s entry point '%s' clashes with one already registered; skipped", self.what, ep.name)
            return
        try:
            self.add_plugin(key, obj)
        except (DDBenchError, TypeError) as exc:
            log.warning("%s entry point '%s' could not be registered (%s); skipped", self.what, ep.name, exc)

    def add_plugin(self, name: str, obj: object) -> None:
        """Register an entry point's object; registries whose entries need wrapping (methods) override this."""
        self.register(name, obj)  # type: ignore[arg-type]
