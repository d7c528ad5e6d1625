"""Sets made by other codebases: import (mtt, datm, dc, mkdt, tensors, folder) and export (mtt, tensors, folder).

The import formats' registry (ddbench.interop.formats) is light; the importer and exporter (torch) load on first use.
"""
from __future__ import annotations

import importlib

from ddbench.interop.formats import EXPORT_FORMATS, FORMATS, ImportFormat

_LAZY = {"ImportOptions": "ddbench.interop.importer", "import_set": "ddbench.interop.importer",
         "export_set": "ddbench.interop.exporter"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ddbench.interop' has no attribute {name!r}")


__all__ = ["FORMATS", "ImportFormat", "EXPORT_FORMATS", "ImportOptions", "import_set", "export_set"]
