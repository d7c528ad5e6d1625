"""scikit-learn's bundled 8×8 handwritten digits: real data that works offline anywhere.

1,797 images of 8×8 pixels with values 0..16, scaled to uint8 0..255. The train/test split is
fixed and stratified (30% test, random_state 0): 1,257 train / 540 test images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ddbench.data.base import Splits

TEST_FRACTION = 0.3
SPLIT_SEED = 0


def read_digits(_root: Path | None = None) -> Splits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    idx_train, idx_test = np.sort(idx_train), np.sort(idx_test)
    return Splits(images[idx_train], labels[idx_train], images[idx_test], labels[idx_test], [str(i) for i in range(10)])
