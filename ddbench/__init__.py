"""ddbench: one honest, fast, reproducible benchmark for dataset distillation."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ddbench")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

from ddbench.core.errors import DDBenchError  # noqa: E402

__all__ = ["DDBenchError", "__version__"]
