"""The method registry, after timm's: register by decorator, create by name, list with wildcards.

    @register_method                      # name = class name, lower-cased
    class MyMethod(Method): ...

    @register_method("my-fn", default_cfg={"steps": 10})
    def my_fn(train, ipc, ctx): ...

    create_method("random", **cfg); list_methods("k*")

Built-in methods are the modules of ddbench.methods (the repository's methods/ folder); other
packages add theirs through the entry-point group `ddbench.methods`.
"""
from __future__ import annotations

import fnmatch
import importlib
import logging
import pkgutil
import re
from importlib.metadata import entry_points
from typing import Any

from ddbench.errors import DDBenchError
from ddbench.method import FunctionMethod, Method

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ddbench.methods"
_REGISTRY: dict[str, type[Method]] = {}
_loaded = False


def register_method(target: Any = None, *, name: str | None = None, default_cfg: dict | None = None,
                    protocol_cfg: dict | None = None, one_set_per_seed: bool | None = None):
    """Register a Method subclass or a function `fn(train, ipc, ctx)`; usable bare or with arguments."""
    if isinstance(target, str):
        return lambda obj: register_method(obj, name=target, default_cfg=default_cfg, protocol_cfg=protocol_cfg,
                                           one_set_per_seed=one_set_per_seed)
    if target is None:
        return lambda obj: register_method(obj, name=name, default_cfg=default_cfg, protocol_cfg=protocol_cfg,
                                           one_set_per_seed=one_set_per_seed)
    if isinstance(target, type) and issubclass(target, Method):
        cls = target
    elif callable(target):
        attrs: dict[str, Any] = {"fn": staticmethod(target), "__doc__": target.__doc__, "__module__": target.__module__}
        cls = type(f"{target.__name__}_method", (FunctionMethod,), attrs)
    else:
        raise TypeError("register_method takes a Method subclass or a function")
    key = (name or cls.name or getattr(target, "__name__", "")).lower()
    if not key:
        raise TypeError("a method needs a name")
    existing = _REGISTRY.get(key)
    if existing is not None and existing is not cls:
        raise DDBenchError(f"method name '{key}' is already registered (by {existing.__module__}.{existing.__qualname__}); "
                           "choose another name or unregister_method() it first")
    cls.name = key
    if default_cfg is not None:
        cls.default_cfg = dict(default_cfg)
    if protocol_cfg is not None:
        cls.protocol_cfg = dict(protocol_cfg)
    if one_set_per_seed is not None:
        cls.one_set_per_seed = one_set_per_seed
    _REGISTRY[key] = cls
    return target


def unregister_method(name: str) -> None:
    """Remove a registered method (tests and plug-in reloads); unknown names are ignored."""
    _REGISTRY.pop(name.lower(), None)


def registry_snapshot() -> dict[str, type[Method]]:
    """A copy of the registry, for restoring it later (`restore_registry`)."""
    _load_all()
    return dict(_REGISTRY)


def restore_registry(snapshot: dict[str, type[Method]]) -> None:
    _REGISTRY.clear()
    _REGISTRY.update(snapshot)


def _load_all() -> None:
    """Import the built-in method modules and entry points once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import ddbench.methods as builtin

    for info in pkgutil.iter_modules(builtin.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"ddbench.methods.{info.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except (Exception, SystemExit) as exc:  # a broken plug-in (even one calling sys.exit) must not break ddbench
            log.warning("could not load method entry point '%s' (%s: %s); skipped", ep.name, type(exc).__name__, exc)
            continue
        if ep.name.lower() in _REGISTRY:
            if _REGISTRY[ep.name.lower()] is not obj:
                log.warning("method entry point '%s' clashes with a method already registered; skipped", ep.name)
            continue
        if isinstance(obj, type) and issubclass(obj, Method) or callable(obj):
            try:
                register_method(obj, name=ep.name)
            except (DDBenchError, TypeError) as exc:
                log.warning("method entry point '%s' could not be registered (%s); skipped", ep.name, exc)


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_methods(pattern: str = "*") -> list[str]:
    _load_all()
    return sorted((n for n in _REGISTRY if fnmatch.fnmatch(n, pattern.lower())), key=_natural_key)


def method_class(name: str) -> type[Method]:
    _load_all()
    key = name.lower()
    if key not in _REGISTRY:
        raise DDBenchError(f"unknown method '{name}'; known: {', '.join(list_methods())}")
    return _REGISTRY[key]


def create_method(name: str, **cfg: Any) -> Method:
    """An instance of the registered method `name`, with config overrides `cfg`."""
    return method_class(name)(**cfg)


def method_summary(name: str) -> str:
    doc = (method_class(name).__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


__all__ = ["register_method", "unregister_method", "registry_snapshot", "restore_registry", "create_method",
           "list_methods", "method_class", "method_summary", "Method", "ENTRY_POINT_GROUP"]
