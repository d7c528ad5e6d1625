"""Sets made by other codebases: import (mtt, datm, dc, mkdt, tensors, folder) and export (mtt, tensors, folder)."""
from ddbench.interop.exporter import EXPORT_FORMATS, export_set
from ddbench.interop.formats import FORMATS, ImportFormat
from ddbench.interop.importer import ImportOptions, import_set

__all__ = ["FORMATS", "ImportFormat", "EXPORT_FORMATS", "ImportOptions", "import_set", "export_set"]
