"""Write the small CSV tables the `ho-table-*` sweep specs of the diagnosis corpus read.

Deterministic (fixed seeds, rounded values): rerunning it rewrites the same files.

    python tests/data/diagnosis/tables/make_tables.py

    scales.csv      1000 rows, 10 numeric features whose scales run from 1e-3 to 1e4
                    (with offsets), 4 classes in column `label` (integers 0..3)
    multiclass.csv  1200 rows, 12 features, 7 imbalanced classes in `label` (strings
                    "c0".."c6"), 10% of the labels flipped
    regression.csv  1000 rows, 8 features (5 used by the target), a float target `y`
                    (Friedman #1: 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5 + noise)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification, make_friedman1

HERE = Path(__file__).resolve().parent


def _write(frame: pd.DataFrame, name: str) -> None:
    frame.to_csv(HERE / name, index=False, float_format="%.4g")


def scales() -> pd.DataFrame:
    x, y = make_classification(n_samples=1000, n_features=10, n_informative=6,
                               n_redundant=2, n_classes=4, n_clusters_per_class=1,
                               flip_y=0.02, class_sep=1.2, random_state=11)
    scale = np.logspace(-3, 4, 10)                    # 0.001 ... 10000
    offset = np.array([0, 5, -3, 100, 0, 2e3, -50, 0, 1e4, 3e4])
    frame = pd.DataFrame(x * scale + offset, columns=[f"f{i}" for i in range(10)])
    frame["label"] = y
    return frame


def multiclass() -> pd.DataFrame:
    weights = [0.35, 0.2, 0.15, 0.12, 0.08, 0.06, 0.04]
    x, y = make_classification(n_samples=1200, n_features=12, n_informative=8,
                               n_redundant=2, n_classes=7, n_clusters_per_class=2,
                               weights=weights, flip_y=0.1, class_sep=1.0, random_state=12)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(12)])
    frame["label"] = [f"c{v}" for v in y]
    return frame


def regression() -> pd.DataFrame:
    x, y = make_friedman1(n_samples=1000, n_features=8, noise=1.0, random_state=13)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(8)])
    frame["y"] = y
    return frame


if __name__ == "__main__":
    for name, make in (("scales.csv", scales), ("multiclass.csv", multiclass),
                       ("regression.csv", regression)):
        _write(make(), name)
        print(f"{name}: {(HERE / name).stat().st_size // 1024} KiB")
