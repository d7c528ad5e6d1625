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
import pkgutil
import re
from importlib.metadata import entry_points
from typing import Any

from ddbench.errors import DDBenchError
from ddbench.method import FunctionMethod, Method

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
    cls.name = key
    if default_cfg is not None:
        cls.default_cfg = dict(default_cfg)
    if protocol_cfg is not None:
        cls.protocol_cfg = dict(protocol_cfg)
    if one_set_per_seed is not None:
        cls.one_set_per_seed = one_set_per_seed
    _REGISTRY[key] = cls
    return target


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
        except Exception as exc:  # a broken plug-in must not break ddbench
            import warnings

            warnings.warn(f"ddbench: could not load method entry point '{ep.name}' ({exc})", stacklevel=2)
            continue
        if ep.name.lower() not in _REGISTRY and (isinstance(obj, type) and issubclass(obj, Method) or callable(obj)):
            register_method(obj, name=ep.name)


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


__all__ = ["register_method", "create_method", "list_methods", "method_class", "method_summary", "Method", "ENTRY_POINT_GROUP"]
