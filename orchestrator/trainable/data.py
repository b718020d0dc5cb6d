"""Data sets as tensors on the trial's device.

Every data set here fits in memory, so it is loaded once per trial as tensors on
the trial's device and batches are sliced there: no DataLoader worker processes
per trial. The train/validation split is seeded from the spec's seed, so every
trial of a sweep sees the same split.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from orchestrator.errors import OrchestratorError
from orchestrator.trainable.config import DatasetConfig


@dataclass
class Dataset:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example: (features,) or (channels, height, width)."""
        return tuple(self.x_train.shape[1:])

    def to(self, device: torch.device) -> Dataset:
        return Dataset(
            *(t.to(device) for t in (self.x_train, self.y_train, self.x_val, self.y_val)),
            num_classes=self.num_classes,
        )


def _split(x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int, num_classes: int):
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(len(x) * val_fraction)))
    val, train = order[:n_val], order[n_val:]
    return Dataset(
        torch.as_tensor(x[train], dtype=torch.float32),
        torch.as_tensor(y[train], dtype=torch.long),
        torch.as_tensor(x[val], dtype=torch.float32),
        torch.as_tensor(y[val], dtype=torch.long),
        num_classes,
    )


def _digits_table() -> np.ndarray:
    """scikit-learn's 8x8 digits (64 pixels, then the label, per row), read from the file
    `sklearn.datasets.load_digits` reads, without importing `sklearn.datasets`: that import
    alone costs a trial's worker a second."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        from sklearn.datasets import load_digits  # raises the import error users expect

        digits = load_digits()
        return np.column_stack([digits.data, digits.target])
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as handle:
        return np.loadtxt(handle, delimiter=",")


def _digits(cfg: DatasetConfig, seed: int) -> Dataset:
    table = _digits_table()
    x = (table[:, :-1] / 16.0).reshape(-1, 1, 8, 8)  # pixel values are 0..16
    return _split(x, table[:, -1].astype(int), cfg.val_fraction, seed, 10)


def _synthetic(cfg: DatasetConfig, seed: int) -> Dataset:
    from sklearn.datasets import make_classification

    informative = max(2, cfg.n_features // 2)
    x, y = make_classification(
        n_samples=cfg.n_samples,
        n_features=cfg.n_features,
        n_informative=informative,
        n_redundant=min(cfg.n_features - informative, informative // 2),
        n_classes=cfg.n_classes,
        n_clusters_per_class=1,
        flip_y=cfg.noise,
        random_state=seed,
    )
    return _split(x, y, cfg.val_fraction, seed, cfg.n_classes)


def _table(cfg: DatasetConfig, seed: int) -> Dataset:
    import pandas as pd

    path = Path(cfg.path or "")
    if not path.is_file():
        raise OrchestratorError(f"dataset.path: {path} is not a file")
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif path.suffix == ".csv":
        frame = pd.read_csv(path)
    else:
        raise OrchestratorError(f"dataset.path: {path} must end in .parquet or .csv")
    if cfg.label not in frame.columns:
        raise OrchestratorError(
            f"dataset.label: column {cfg.label!r} is not in {path} "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    labels, classes = pd.factorize(frame.pop(cfg.label), sort=True)
    features = frame.select_dtypes("number")
    if features.shape[1] == 0:
        raise OrchestratorError(f"dataset.path: {path} has no numeric feature columns")
    x = features.to_numpy(dtype=np.float64)
    data = _split(x, labels, cfg.val_fraction, seed, len(classes))
    # standardise with statistics of the training split only
    mean, std = data.x_train.mean(0), data.x_train.std(0).clamp_min(1e-8)
    data.x_train = (data.x_train - mean) / std
    data.x_val = (data.x_val - mean) / std
    return data


def _torchvision(cfg: DatasetConfig, seed: int) -> Dataset:
    try:
        import torchvision
    except ImportError as exc:
        raise OrchestratorError(
            f"dataset {cfg.name!r} needs torchvision: pip install -e '.[vision]'"
        ) from exc
    cls = {
        "mnist": torchvision.datasets.MNIST,
        "fashion_mnist": torchvision.datasets.FashionMNIST,
        "cifar10": torchvision.datasets.CIFAR10,
    }[cfg.name]
    try:
        train = cls(root=cfg.root, train=True, download=cfg.download)
    except RuntimeError as exc:
        raise OrchestratorError(
            f"dataset {cfg.name!r}: no files under root {cfg.root!r}; put them there "
            "or set `dataset.download: true` to fetch them"
        ) from exc
    x = np.asarray(train.data, dtype=np.float32) / 255.0
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # to (N, C, H, W)
    y = np.asarray(train.targets)
    if cfg.limit:
        x, y = x[: cfg.limit], y[: cfg.limit]
    return _split(x, y, cfg.val_fraction, seed, len(train.classes))


LOADERS = {
    "digits": _digits,
    "synthetic": _synthetic,
    "table": _table,
    "mnist": _torchvision,
    "fashion_mnist": _torchvision,
    "cifar10": _torchvision,
}


@functools.lru_cache(maxsize=2)
def _cached(cfg: DatasetConfig, seed: int, device: torch.device) -> Dataset:
    return LOADERS[cfg.name](cfg, seed).to(device)


def load_dataset(cfg: DatasetConfig, seed: int, device: torch.device | str = "cpu") -> Dataset:
    """Load `cfg`'s data set, split it with `seed`, and place it on `device`.

    With reused actors a process runs trial after trial on the same data: the last
    two data sets stay cached (training only reads the tensors, never writes them).
    """
    return _cached(cfg, seed, torch.device(device))
