"""Example dataset (docs/extending.md): scikit-learn's digits with every pixel inverted, bundled (no files).
One file; the `DATASETS.register` line is its one line of registration (a plug-in package names SPEC in its
entry-point group "ddbench.datasets" instead)."""
from __future__ import annotations

from ddbench.data import DATASETS
from ddbench.data.base import DatasetSpec, Expected, Splits
from ddbench.data.digits import read_digits


def read_inverted(_root=None) -> Splits:
    s = read_digits()
    return Splits(255 - s.x_train, s.y_train, 255 - s.x_test, s.y_test, s.class_names)


SPEC = DatasetSpec("digits_inverted", "scikit-learn's digits, pixels inverted (example)", [], read_inverted, None,
                   bundled=True, expected=Expected(10, 1257, 540, (8, 8, 1)))
DATASETS.register(SPEC.name, SPEC)
