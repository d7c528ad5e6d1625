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

import importlib
import logging
import pkgutil
from typing import Any

from ddbench.core.registry import Registry
from ddbench.distill.method import FunctionMethod, Method

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ddbench.methods"


BUILTIN_PACKAGE = "ddbench.methods"  # the repository's methods/ folder; a layer above this one, so imported by name


def _import_builtins() -> None:
    builtin = importlib.import_module(BUILTIN_PACKAGE)
    for info in pkgutil.iter_modules(builtin.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{BUILTIN_PACKAGE}.{info.name}")


class _MethodRegistry(Registry[type[Method]]):
    def add_plugin(self, name: str, obj: object) -> None:
        if not (isinstance(obj, type) and issubclass(obj, Method) or callable(obj)):
            raise TypeError(f"{obj!r} is neither a Method subclass nor a function")
        register_method(obj, name=name)


METHODS = _MethodRegistry("method", entry_points=ENTRY_POINT_GROUP, on_load=_import_builtins)


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
    METHODS.register(key, cls)  # refused with one line when the name is taken by another entry
    cls.name = key
    if default_cfg is not None:
        cls.default_cfg = dict(default_cfg)
    if protocol_cfg is not None:
        cls.protocol_cfg = dict(protocol_cfg)
    if one_set_per_seed is not None:
        cls.one_set_per_seed = one_set_per_seed
    return target


def unregister_method(name: str) -> None:
    """Remove a registered method (tests and plug-in reloads); unknown names are ignored."""
    METHODS.unregister(name)


def registry_snapshot() -> tuple[dict, dict]:
    """A copy of the registry, for restoring it later (`restore_registry`)."""
    return METHODS.snapshot()


def restore_registry(snapshot: tuple[dict, dict]) -> None:
    METHODS.restore(snapshot)


def list_methods(pattern: str = "*") -> list[str]:
    return METHODS.names(pattern)


def method_class(name: str) -> type[Method]:
    return METHODS.get(name)


def create_method(name: str, **cfg: Any) -> Method:
    """An instance of the registered method `name`, with config overrides `cfg`."""
    return method_class(name)(**cfg)


def method_summary(name: str) -> str:
    doc = (method_class(name).__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


__all__ = ["METHODS", "register_method", "unregister_method", "registry_snapshot", "restore_registry", "create_method",
           "list_methods", "method_class", "method_summary", "Method", "ENTRY_POINT_GROUP"]
