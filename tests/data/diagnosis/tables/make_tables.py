"""Write the small CSV tables the `ho-table-*`, `h2-*`, `h3-*`, `h4-*`, `h5-*`, `h6-*`,
`h7-*` and `h8-*` sweep specs of the diagnosis corpus read.

Deterministic (fixed seeds, rounded values): rerunning it rewrites the same files.

    python tests/data/diagnosis/tables/make_tables.py            # every table
    python tests/data/diagnosis/tables/make_tables.py wide.csv   # only the ones named

    scales.csv      1000 rows, 10 numeric features whose scales run from 1e-3 to 1e4
                    (with offsets), 4 classes in column `label` (integers 0..3)
    multiclass.csv  1200 rows, 12 features, 7 imbalanced classes in `label` (strings
                    "c0".."c6"), 10% of the labels flipped
    regression.csv  1000 rows, 8 features (5 used by the target), a float target `y`
                    (Friedman #1: 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5 + noise)

Added with the `h2-` sweeps:

    wide.csv        360 rows, 48 features of which 6 informative (the rest noise), 2
                    classes in `label` (60/40), 12% of the labels flipped: few rows for
                    many features
    prices.csv      800 rows, 6 features (two skewed: lognormal, one a count), a float
                    target `price` on a large scale (mean about 300, sd about 120), noise
                    growing with the price and 2% of the rows gross outliers
    classes20.csv   1600 rows, 16 features, 20 balanced classes in `label` (integers)

Added with the `h3-` sweeps:

    linear.csv      900 rows, 10 features (6 used), a float target `y` linear in them
                    (mean about 50, sd about 8) with heavy noise (about 40% of its
                    variance)
    unit.csv        700 rows, 6 features, a float target `share` in [0, 1] (a logistic
                    function of 4 of the features plus noise, clipped to [0, 1])
    imbalanced.csv  1500 rows, 12 features of which 5 informative, 2 classes in `label`
                    (90/10), 3% of the labels flipped
    tiny3.csv       150 rows, 10 features of which 4 informative, 3 classes in `kind`
                    (strings "a", "b", "c"), 5% of the labels flipped: few rows

Added with the `h4-` sweeps:

    corr5.csv       1200 rows, 14 features (12 mixtures of 4 shared latent factors, so
                    strongly correlated, and 2 pure noise), 5 classes in `cls` (integers,
                    shares 30/25/20/15/10) told apart in the latent space, 5% of the
                    labels flipped
    heavytail.csv   1000 rows, 8 features (5 used), a float target `y` (mean about 20)
                    with heavy-tailed noise (Student t, 2 degrees of freedom)
    wide1000.csv    200 rows, 1000 features of which 10 informative (the rest noise), 2
                    balanced classes in `label`, 5% of the labels flipped: very few rows
                    for very many features (values written with 3 significant digits)

Added with the `h5-` sweeps:

    spheres.csv     900 rows, 6 features (standard normal), 3 balanced classes in `shell`
                    (strings "inner", "middle", "outer") by the radius of the first 3
                    features (concentric shells: no linear boundary), the other 3 pure
                    noise, 4% of the labels reassigned at random
    poly.csv        1200 rows, 5 features (4 used), a float target `t` (mean about -40,
                    sd about 9): a polynomial with a square and an interaction plus
                    little noise (about 2% of its variance)
    overlap.csv     400 rows, 24 features of which 4 informative, 3 classes in `label`
                    (integers) lying close together, 15% of the labels flipped: few,
                    noisy rows

Added with the `h6-` sweeps:

    churn.csv       1400 rows, 16 features of which 6 informative, 2 classes in `churned`
                    (80/20), 4% of the labels flipped
    plant.csv       1000 rows, 6 features in their raw units (temperature about 15,
                    pressure about 1010, humidity 20..95, a skewed wind speed, the hour
                    0..23, a load about 500), a float target `output` (mean about 60, sd
                    about 12) with noise of about 10% of its variance

Added with the `h7-` sweeps:

    wine3.csv       900 rows, 13 features of which 6 informative, 3 imbalanced classes
                    in `cultivar` (strings "a", "b", "c"; shares about 70/20/10), 3% of
                    the labels flipped
    cancer.csv      569 rows, 30 features (10 measurements, each as a mean, a standard
                    error and a worst value: strongly correlated), 2 classes in
                    `diagnosis` (strings "B", "M"; about 63/37), 3% of the labels flipped
    energy.csv      800 rows, 8 features, a float target `load` (mean about 25, sd about
                    9): smooth effects of 6 of the features and one interaction, plus
                    noise of about 5% of its variance

Added with the `h8-` sweeps:

    grade4.csv      1000 rows, 10 features of which 5 informative (2 more linear
                    mixtures of them, the rest noise), 4 classes in `grade` (strings "A"
                    .. "D"; shares about 35/30/20/15), each class 2 clusters, 5% of the
                    labels flipped
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification, make_friedman1

HERE = Path(__file__).resolve().parent


def _write(frame: pd.DataFrame, name: str) -> None:
    frame.to_csv(HERE / name, index=False, float_format=FLOAT_FORMAT.get(name, "%.4g"))


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


def wide() -> pd.DataFrame:
    x, y = make_classification(n_samples=360, n_features=48, n_informative=6,
                               n_redundant=0, n_repeated=0, n_classes=2,
                               n_clusters_per_class=2, weights=[0.6, 0.4], flip_y=0.12,
                               class_sep=1.0, shuffle=True, random_state=31)
    frame = pd.DataFrame(x, columns=[f"v{i}" for i in range(48)])
    frame["label"] = y
    return frame


def prices() -> pd.DataFrame:
    rng = np.random.default_rng(32)
    n = 800
    area = rng.lognormal(mean=4.3, sigma=0.35, size=n)           # about 75, skewed
    rooms = rng.poisson(3.0, size=n) + 1
    age = rng.uniform(0, 80, size=n)
    dist = rng.lognormal(mean=1.5, sigma=0.6, size=n)            # about 4.5, skewed
    quality = rng.normal(0, 1, size=n)
    lot = rng.normal(0, 1, size=n)                                # unused by the target
    base = (2.6 * area + 18 * rooms - 0.9 * age - 25 * np.log(dist)
            + 40 * np.tanh(quality) + 15 * quality * (age < 30))
    price = base - base.mean() + 300
    price = price + rng.normal(0, 1, size=n) * (0.08 * np.abs(price) + 5)
    outliers = rng.random(n) < 0.02
    price[outliers] += rng.choice([-1, 1], size=outliers.sum()) * rng.uniform(300, 600,
                                                                             size=outliers.sum())
    return pd.DataFrame({"area": area, "rooms": rooms, "age": age, "dist": dist,
                         "quality": quality, "lot": lot, "price": price})


def classes20() -> pd.DataFrame:
    x, y = make_classification(n_samples=1600, n_features=16, n_informative=12,
                               n_redundant=2, n_classes=20, n_clusters_per_class=1,
                               flip_y=0.03, class_sep=1.6, random_state=33)
    frame = pd.DataFrame(x, columns=[f"z{i}" for i in range(16)])
    frame["label"] = y
    return frame


def linear() -> pd.DataFrame:
    rng = np.random.default_rng(61)
    n = 900
    x = rng.normal(0, 1, size=(n, 10))
    w = np.array([4.0, -3.0, 2.5, 2.0, -1.5, 1.0, 0, 0, 0, 0])
    signal = x @ w
    y = 50 + signal + rng.normal(0, 0.82 * signal.std(), size=n)
    frame = pd.DataFrame(x, columns=[f"u{i}" for i in range(10)])
    frame["y"] = y
    return frame


def unit() -> pd.DataFrame:
    rng = np.random.default_rng(62)
    n = 700
    x = rng.uniform(-2, 2, size=(n, 6))
    z = 1.5 * x[:, 0] - 1.0 * x[:, 1] * x[:, 2] + np.sin(2 * x[:, 3])
    share = 1 / (1 + np.exp(-z)) + rng.normal(0, 0.08, size=n)
    frame = pd.DataFrame(x, columns=[f"s{i}" for i in range(6)])
    frame["share"] = np.clip(share, 0, 1)
    return frame


def imbalanced() -> pd.DataFrame:
    x, y = make_classification(n_samples=1500, n_features=12, n_informative=5,
                               n_redundant=2, n_classes=2, n_clusters_per_class=2,
                               weights=[0.9, 0.1], flip_y=0.03, class_sep=0.9,
                               random_state=63)
    frame = pd.DataFrame(x, columns=[f"b{i}" for i in range(12)])
    frame["label"] = y
    return frame


def tiny3() -> pd.DataFrame:
    x, y = make_classification(n_samples=150, n_features=10, n_informative=4,
                               n_redundant=2, n_classes=3, n_clusters_per_class=1,
                               flip_y=0.05, class_sep=1.0, random_state=64)
    frame = pd.DataFrame(x, columns=[f"t{i}" for i in range(10)])
    frame["kind"] = np.array(["a", "b", "c"])[y]
    return frame


def corr5() -> pd.DataFrame:
    rng = np.random.default_rng(81)
    n, shares = 1200, [0.30, 0.25, 0.20, 0.15, 0.10]
    y = rng.choice(5, size=n, p=shares)
    centres = rng.normal(0, 1.1, size=(5, 4))
    z = centres[y] + rng.normal(0, 1, size=(n, 4))               # latent factors
    loadings = rng.normal(0, 1, size=(4, 12))
    mixed = z @ loadings + rng.normal(0, 0.35, size=(n, 12))      # correlated features
    x = np.hstack([mixed, rng.normal(0, 1, size=(n, 2))])
    flip = rng.random(n) < 0.05
    y[flip] = rng.integers(0, 5, size=flip.sum())
    frame = pd.DataFrame(x, columns=[f"k{i}" for i in range(14)])
    frame["cls"] = y
    return frame


def heavytail() -> pd.DataFrame:
    rng = np.random.default_rng(82)
    n = 1000
    x = rng.normal(0, 1, size=(n, 8))
    signal = 3 * x[:, 0] - 2 * x[:, 1] + 1.5 * x[:, 2] * x[:, 3] + 2 * np.sin(2 * x[:, 4])
    y = 20 + signal + 1.5 * rng.standard_t(2, size=n)
    frame = pd.DataFrame(x, columns=[f"h{i}" for i in range(8)])
    frame["y"] = y
    return frame


def wide1000() -> pd.DataFrame:
    x, y = make_classification(n_samples=200, n_features=1000, n_informative=10,
                               n_redundant=0, n_repeated=0, n_classes=2,
                               n_clusters_per_class=2, flip_y=0.05, class_sep=1.0,
                               shuffle=True, random_state=83)
    frame = pd.DataFrame(x, columns=[f"w{i}" for i in range(1000)])
    frame["label"] = y
    return frame


def spheres() -> pd.DataFrame:
    rng = np.random.default_rng(101)
    n = 900
    x = rng.normal(0, 1, size=(n, 6))
    radius = np.linalg.norm(x[:, :3], axis=1)
    y = np.digitize(radius, np.quantile(radius, [1 / 3, 2 / 3]))
    flip = rng.random(n) < 0.04
    y[flip] = rng.integers(0, 3, size=flip.sum())
    frame = pd.DataFrame(x, columns=[f"p{i}" for i in range(6)])
    frame["shell"] = np.array(["inner", "middle", "outer"])[y]
    return frame


def poly() -> pd.DataFrame:
    rng = np.random.default_rng(102)
    n = 1200
    x = rng.uniform(-2, 2, size=(n, 5))
    signal = 3 * x[:, 0] ** 2 - 4 * x[:, 1] * x[:, 2] + 5 * x[:, 3]
    y = -40 + signal - signal.mean() + rng.normal(0, 0.15 * signal.std(), size=n)
    frame = pd.DataFrame(x, columns=[f"q{i}" for i in range(5)])
    frame["t"] = y
    return frame


def overlap() -> pd.DataFrame:
    x, y = make_classification(n_samples=400, n_features=24, n_informative=4,
                               n_redundant=0, n_repeated=0, n_classes=3,
                               n_clusters_per_class=1, flip_y=0.15, class_sep=0.7,
                               shuffle=True, random_state=103)
    frame = pd.DataFrame(x, columns=[f"o{i}" for i in range(24)])
    frame["label"] = y
    return frame


def churn() -> pd.DataFrame:
    x, y = make_classification(n_samples=1400, n_features=16, n_informative=6,
                               n_redundant=2, n_repeated=0, n_classes=2,
                               n_clusters_per_class=2, weights=[0.82, 0.18], flip_y=0.04,
                               class_sep=1.0, random_state=121)
    frame = pd.DataFrame(x, columns=[f"c{i}" for i in range(16)])
    frame["churned"] = y
    return frame


def plant() -> pd.DataFrame:
    rng = np.random.default_rng(122)
    n = 1000
    temp = rng.normal(15, 8, size=n)
    pressure = rng.normal(1010, 10, size=n)
    humidity = rng.uniform(20, 95, size=n)
    wind = rng.gamma(2.0, 2.5, size=n)
    hour = rng.integers(0, 24, size=n)
    load = rng.normal(500, 150, size=n)
    signal = (-0.6 * temp + 0.25 * (pressure - 1010) - 0.08 * humidity
              + 4 * np.sqrt(wind) + 5 * np.sin(2 * np.pi * hour / 24) + 0.04 * load)
    signal = (signal - signal.mean()) / signal.std() * 11.4
    y = 60 + signal + rng.normal(0, 3.8, size=n)
    return pd.DataFrame({"temp": temp, "pressure": pressure, "humidity": humidity,
                         "wind": wind, "hour": hour, "load": load, "output": y})


def wine3() -> pd.DataFrame:
    x, y = make_classification(n_samples=900, n_features=13, n_informative=6,
                               n_redundant=3, n_repeated=0, n_classes=3,
                               n_clusters_per_class=1, weights=[0.7, 0.2, 0.1], flip_y=0.03,
                               class_sep=1.0, random_state=141)
    frame = pd.DataFrame(x, columns=[f"w{i}" for i in range(13)])
    frame["cultivar"] = np.array(["a", "b", "c"])[y]
    return frame


def cancer() -> pd.DataFrame:
    rng = np.random.default_rng(142)
    x, y = make_classification(n_samples=569, n_features=10, n_informative=5,
                               n_redundant=3, n_repeated=0, n_classes=2,
                               n_clusters_per_class=1, weights=[0.63, 0.37], flip_y=0.03,
                               class_sep=1.2, random_state=142)
    mean = 10 + 2 * x
    se = 0.1 * np.abs(mean) * rng.lognormal(0, 0.3, size=x.shape)
    worst = mean + 2 * se + rng.normal(0, 0.3, size=x.shape)
    names = [f"m{i}" for i in range(10)] + [f"se{i}" for i in range(10)] \
        + [f"worst{i}" for i in range(10)]
    frame = pd.DataFrame(np.hstack([mean, se, worst]), columns=names)
    frame["diagnosis"] = np.array(["B", "M"])[y]
    return frame


def energy() -> pd.DataFrame:
    rng = np.random.default_rng(143)
    n = 800
    x = rng.normal(0, 1, size=(n, 8))
    signal = (4 * x[:, 0] + 3 * np.tanh(2 * x[:, 1]) - 2 * x[:, 2] * x[:, 3]
              + 2 * np.abs(x[:, 4]) + 1.5 * np.cos(2 * x[:, 5]))
    signal = (signal - signal.mean()) / signal.std() * 8.8
    y = 25 + signal + rng.normal(0, 2.0, size=n)
    frame = pd.DataFrame(x, columns=[f"e{i}" for i in range(8)])
    frame["load"] = y
    return frame


def grade4() -> pd.DataFrame:
    x, y = make_classification(n_samples=1000, n_features=10, n_informative=5,
                               n_redundant=2, n_repeated=0, n_classes=4,
                               n_clusters_per_class=2, weights=[0.35, 0.3, 0.2, 0.15],
                               flip_y=0.05, class_sep=1.0, random_state=153)
    frame = pd.DataFrame(x, columns=[f"g{i}" for i in range(10)])
    frame["grade"] = np.array(["A", "B", "C", "D"])[y]
    return frame


FLOAT_FORMAT = {"wide1000.csv": "%.3g"}  # a large table: fewer digits

TABLES = {"scales.csv": scales, "multiclass.csv": multiclass, "regression.csv": regression,
          "wide.csv": wide, "prices.csv": prices, "classes20.csv": classes20,
          "linear.csv": linear, "unit.csv": unit, "imbalanced.csv": imbalanced,
          "tiny3.csv": tiny3, "corr5.csv": corr5, "heavytail.csv": heavytail,
          "wide1000.csv": wide1000, "spheres.csv": spheres, "poly.csv": poly,
          "overlap.csv": overlap, "churn.csv": churn, "plant.csv": plant,
          "wine3.csv": wine3, "cancer.csv": cancer, "energy.csv": energy,
          "grade4.csv": grade4}

if __name__ == "__main__":
    import sys

    for name in sys.argv[1:] or TABLES:
        _write(TABLES[name](), name)
        print(f"{name}: {(HERE / name).stat().st_size // 1024} KiB")
