"""Architecture names without the model zoo: a committed index of timm's registry (ddbench's own networks
included) for one timm version, so that a card or a flag with a typo is refused without importing timm and
torchvision (about 1.5 s on this CPU).

A name found in the index is known whatever timm is installed (timm does not drop models); a name not found is
unknown only when the installed timm is the version the index was written from (pinned in pyproject.toml);
otherwise timm itself is asked. After upgrading timm or adding a network, rewrite the file from the live registry:
`python -c 'from ddbench.models.index import write_index; write_index()'`.
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib.metadata
import re
from functools import cache
from pathlib import Path

from ddbench.core.errors import DDBenchError

INDEX_FILE = Path(__file__).with_name("arch_index.txt")
_HEADER = "# timm "


@cache
def _index() -> tuple[str, frozenset[str]]:
    """(timm version the index was written from, the names)."""
    lines = INDEX_FILE.read_text().splitlines()
    version = lines[0][len(_HEADER):] if lines and lines[0].startswith(_HEADER) else ""
    return version, frozenset(line for line in lines[1:] if line and not line.startswith("#"))


def installed_timm() -> str | None:
    try:
        return importlib.metadata.version("timm")
    except importlib.metadata.PackageNotFoundError:
        return None


def index_is_current() -> bool:
    """Whether the index was written from the installed timm (then it is the whole registry)."""
    return _index()[0] == installed_timm()


def _live_names() -> frozenset[str]:
    import timm

    from ddbench.models import classic, convnet, crossarch  # noqa: F401  (register ddbench's networks into timm)

    return frozenset(timm.list_models())


def arch_names() -> frozenset[str]:
    """Every architecture name: the index when it is current, timm's live registry otherwise."""
    return _index()[1] if index_is_current() else _live_names()


def is_arch(name: str) -> bool:
    """`name` (or `name.pretrained_tag`) builds a network; timm is imported only for a name the index lacks
    while the installed timm differs from the index's version."""
    base = name.partition(".")[0]
    if base in _index()[1]:
        return True
    return False if index_is_current() else base in _live_names()


def write_index() -> Path:
    """Rewrite the index from the installed timm's registry (run after upgrading timm or adding a network)."""
    text = "\n".join([f"{_HEADER}{installed_timm()}", *sorted(_live_names())]) + "\n"
    INDEX_FILE.write_text(text)
    _index.cache_clear()
    return INDEX_FILE


TIMM_PREFIX = "timm:"  # --arch 'timm:vit_*' matches timm's whole registry instead of the tested architectures


def is_vit(arch: str) -> bool:
    return any(key in arch for key in ("vit", "deit", "swin", "eva"))


def _img_size_twins(names: list[str]) -> list[str]:
    """Drop names that build the same network once the image size is adapted: ViT-style models whose
    names differ only in a trailing resolution (`vit_tiny_patch16_224` / `_384`) keep the first."""
    kept, seen = [], set()
    for name in names:
        base = re.sub(r"_\d{3}$", "", name) if is_vit(name) else name
        if base not in seen:
            seen.add(base)
            kept.append(name)
    return kept


def _tested_archs() -> list[str]:
    from ddbench.models.tested import TESTED_ARCHS  # built from the ConvNet module (torch, timm)

    return list(TESTED_ARCHS)


def expand_archs(spec: str | list[str]) -> list[str]:
    """'convnet*,resnet18' -> the matching names, in order, without duplicates.

    Wildcards match the tested architectures (`ddbench list archs`); prefix `timm:` to match all of
    timm's registry. Either way, names that build the same network at the data's size collapse to one.
    Plain names are checked against the index, so a typo costs no model-zoo import."""
    parts = spec if isinstance(spec, list) else [spec]
    names: list[str] = []
    for part in parts:
        for item in (p.strip() for p in part.split(",")):
            if not item:
                continue
            whole_timm = item.startswith(TIMM_PREFIX)
            item = item[len(TIMM_PREFIX):] if whole_timm else item
            if any(ch in item for ch in "*?["):
                pool = sorted(arch_names()) if whole_timm else _tested_archs()
                matches = _img_size_twins([n for n in pool if fnmatch.fnmatch(n, item)])
                if not matches:
                    hint = "" if whole_timm else f" among the tested architectures (use '{TIMM_PREFIX}{item}' for all of timm)"
                    raise DDBenchError(f"--arch '{item}' matches no architecture{hint}; see `ddbench list archs`")
                names += matches
            elif is_arch(item):
                names.append(item)
            else:
                every = sorted(arch_names())
                close = fnmatch.filter(every, f"*{item}*")[:5] or difflib.get_close_matches(item.lower(), every, n=3, cutoff=0.75)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise DDBenchError(f"unknown architecture '{item}'{hint}; see `ddbench list archs`")
    return _img_size_twins(list(dict.fromkeys(names)))
