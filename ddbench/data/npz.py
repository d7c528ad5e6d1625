"""Plain .npz datasets (uint8 x_train/x_test (N,H,W,C), y_*, class_names) and their JPEG-packed form."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from ddbench.core.errors import DDBenchError
from ddbench.data.base import Splits

PLAIN_KEYS = ("x_train", "y_train", "x_test", "y_test")
JPEG_KEYS = ("train_jpeg", "train_offsets", "y_train", "test_jpeg", "test_offsets", "y_test")


def read_npz(path: Path, name: str) -> Splits:
    """Read either layout; any damage to the file becomes one clear DDBenchError."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            if set(PLAIN_KEYS) <= keys:
                arrays = {k: archive[k] for k in PLAIN_KEYS}
            elif set(JPEG_KEYS) <= keys:
                arrays = {
                    "x_train": _decode_jpegs(archive["train_jpeg"], archive["train_offsets"], path),
                    "x_test": _decode_jpegs(archive["test_jpeg"], archive["test_offsets"], path),
                    "y_train": archive["y_train"],
                    "y_test": archive["y_test"],
                }
            else:
                raise DDBenchError(
                    f"{name}: {path} has keys {sorted(keys)}; expected {list(PLAIN_KEYS)} "
                    f"(or the JPEG-packed {list(JPEG_KEYS)})"
                )
            class_names = [str(c) for c in archive["class_names"]] if "class_names" in keys else None
    except DDBenchError:
        raise
    except PermissionError:
        raise DDBenchError(f"cannot read {path}: permission denied (fix its permissions)") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        raise DDBenchError(f"{name}: {path} is corrupt or truncated ({type(exc).__name__}: {exc}); "
                           "delete it and prepare it again") from None
    # labels keep their dtype: Splits.check refuses float labels and empty splits for every reader
    y_train, y_test = arrays["y_train"].reshape(-1), arrays["y_test"].reshape(-1)
    if class_names is None:
        labels = np.concatenate([y_train, y_test])
        class_names = [str(c) for c in range(int(labels.max()) + 1 if len(labels) else 0)]
    x_train, x_test = _as_nhwc(arrays["x_train"]), _as_nhwc(arrays["x_test"])
    return Splits(x_train, y_train, x_test, y_test, class_names)


def read_npz_class_names(path: Path, name: str) -> list[str] | None:
    """Only the `class_names` key of a dataset .npz (no image is decompressed); None when the file has none."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return [str(c) for c in archive["class_names"]] if "class_names" in archive.files else None
    except PermissionError:
        raise DDBenchError(f"cannot read {path}: permission denied (fix its permissions)") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        raise DDBenchError(f"{name}: {path} is corrupt or truncated ({type(exc).__name__}: {exc})") from None


def _as_nhwc(x: np.ndarray) -> np.ndarray:
    return x[..., None] if x.ndim == 3 else x


def _decode_jpegs(blob: np.ndarray, offsets: np.ndarray, path: Path) -> np.ndarray:
    from PIL import Image

    if offsets.ndim != 1 or len(offsets) < 1 or offsets[-1] > len(blob):
        raise DDBenchError(f"{path}: JPEG offsets do not fit the JPEG data (truncated file?)")
    images = []
    raw = blob.tobytes()
    for i in range(len(offsets) - 1):
        with Image.open(io.BytesIO(raw[offsets[i] : offsets[i + 1]])) as img:
            images.append(np.asarray(img))
    return np.stack(images) if images else np.zeros((0, 1, 1, 1), np.uint8)
