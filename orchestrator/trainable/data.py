"""The built-in data sets, as tensors on the trial's device.

Every built-in data set fits in memory, so it is loaded once per trial as tensors on
the trial's device and batches are sliced there: no DataLoader worker processes per
trial. The train/validation split is seeded from the spec's seed, so every trial of a
sweep sees the same split. A user's data set (a factory) is `trainable.user_data`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from orchestrator.errors import OrchestratorError
from orchestrator.spec.settings import DatasetConfig
from orchestrator.trainable.table_data import read_table


@dataclass
class TensorData:
    """A data set held as tensors on the trial's device: batches are sliced there, with
    no DataLoader worker processes (every built-in data set fits in memory)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_outputs: int  # classes, or the regression target's width
    task: str = "classification"

    @property
    def num_classes(self) -> int:
        return self.num_outputs

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example: (features,) or (channels, height, width)."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    def to(self, device: torch.device) -> TensorData:
        return TensorData(
            *(t.to(device) for t in (self.x_train, self.y_train, self.x_val, self.y_val)),
            num_outputs=self.num_outputs, task=self.task,
        )

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator:
        """One epoch of shuffled mini-batches (the order drawn from `generator`)."""
        order = torch.randperm(self.n_train, generator=generator).to(self.x_train.device)
        for idx in order.split(batch_size):
            yield self.x_train[idx], self.y_train[idx]

    def val_batches(self, batch_size: int) -> Iterator:
        for start in range(0, len(self.x_val), batch_size):
            yield self.x_val[start:start + batch_size], self.y_val[start:start + batch_size]

    def initial_batches(self, batch_size: int) -> Iterator:
        """What the untrained model is evaluated on: the whole validation split."""
        return self.val_batches(batch_size)

    def train_targets(self) -> torch.Tensor:
        """The training targets, known up front for tensors (the chance level's prior)."""
        return self.y_train

    def check_non_finite(self, split: str, step: int | None, batch_size: int) -> None:
        """Nothing to trace when a loss goes non-finite: a user's tensors were checked
        whole when loaded (`user_data`), the built-in data sets are finite."""


def _split(x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int, num_outputs: int,
           task: str = "classification") -> TensorData:
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(len(x) * val_fraction)))
    val, train = order[:n_val], order[n_val:]
    target = torch.long if task == "classification" else torch.float32
    return TensorData(
        torch.as_tensor(x[train], dtype=torch.float32),
        torch.as_tensor(y[train], dtype=target),
        torch.as_tensor(x[val], dtype=torch.float32),
        torch.as_tensor(y[val], dtype=target),
        num_outputs, task,
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


def _digits(cfg: DatasetConfig, seed: int, task: str) -> TensorData:
    table = _digits_table()
    x = (table[:, :-1] / 16.0).reshape(-1, 1, 8, 8)  # pixel values are 0..16
    return _split(x, table[:, -1].astype(int), cfg.val_fraction, seed, 10)


def _synthetic(cfg: DatasetConfig, seed: int, task: str) -> TensorData:
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


def _table(cfg: DatasetConfig, seed: int, task: str) -> TensorData:
    table = read_table(cfg.path, cfg.label, cfg.val_fraction, task)
    data = _split(table.features, table.labels, cfg.val_fraction, seed, table.num_outputs,
                  task)
    if cfg.standardize:  # with statistics of the training split only
        mean, std = data.x_train.mean(0), data.x_train.std(0).clamp_min(1e-8)
        data.x_train = (data.x_train - mean) / std
        data.x_val = (data.x_val - mean) / std
    return data


def _torchvision(cfg: DatasetConfig, seed: int, task: str) -> TensorData:
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
def _cached(cfg: DatasetConfig, seed: int, task: str, device: torch.device) -> TensorData:
    return LOADERS[cfg.name](cfg, seed, task).to(device)


def load_dataset(cfg: DatasetConfig, seed: int, device: torch.device | str = "cpu",
                 task: str = "classification") -> TensorData:
    """Load a built-in data set `cfg`, split it with `seed`, and place it on `device`.

    With reused actors a process runs trial after trial on the same data: the last
    two data sets stay cached (training only reads the tensors, never writes them).
    """
    return _cached(cfg, seed, task, torch.device(device))
