"""Example import format (docs/extending.md): a set saved as one .npz with `x` (N, C, H, W) uint8 pixels and `y`
labels. One file; the `FORMATS.register` line is its one line of registration (a plug-in package names FORMAT
in its entry-point group "ddbench.formats" instead)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ddbench.core.errors import DDBenchError
from ddbench.interop.formats import FORMATS, ImportFormat
from ddbench.interop.sources import Source, sha256


def read_npz_pair(src: Path, opts, class_names: list[str]) -> Source:
    try:
        with np.load(src, allow_pickle=False) as data:
            x, y = data["x"], data["y"]
    except (OSError, ValueError, KeyError) as exc:
        raise DDBenchError(f"{src}: not an npz with arrays x and y ({exc})") from None
    return Source(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)), "hard", None, {str(src): sha256(src)})


FORMAT = ImportFormat("npz-pair-example", f"{__name__}:read_npz_pair", "pixels", "an npz with x (uint8 NCHW) and y")
FORMATS.register(FORMAT.name, FORMAT)
