"""A user's data and model, from their factories, in the shared trainable.

Data factory: `load(seed, **settings) -> (train, val)`, each a pair of tensors (or
arrays) `(x, y)` or a `torch.utils.data.Dataset` of `(x, y)` pairs. Tensors become a
`TensorData` on the trial's device, as the built-in data sets are; a Dataset is served
by a DataLoader (`LoaderData`) whose shuffling draws from the trainer's seeded generator,
the same permutation per epoch as the tensor path, so that runs are reproducible and a
restored trial continues exactly.

Model factory: `build(input_shape, num_outputs, **settings) -> nn.Module`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from orchestrator.spec.settings import CodeConfig, UserFactory
from orchestrator.spec.user_code import import_ref
from orchestrator.trainable.data import TensorData

# how many validation examples the untrained model's loss is measured on (a Dataset)
INITIAL_EXAMPLES = 1024


class UserDataError(ValueError):
    """What a data factory returned cannot be trained on (a fault of the data or the
    code, not of the machine: retrying the trial does not help)."""


def code_folders(code: CodeConfig) -> list[str]:
    """The user's code folders in this process: the package Ray shipped (one folder per
    code folder, named by its index), else the folders themselves when this machine has
    them (an embedded Ray, or a test's Ray). They stay first on sys.path for the life of
    the process, as a script's folder does: a factory may import its siblings late."""
    folders: list[str] = []
    if code.package:
        try:
            shipped = Path(list(importlib.import_module(code.package).__path__)[0])
            folders = [str(shipped / str(i)) for i in range(len(code.folders))]
        except ImportError:
            folders = []
    if not folders:
        folders = [f for f in code.folders if Path(f).is_dir()]
    for folder in reversed(folders):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    return folders


def factory(ref: UserFactory, key: str, code: CodeConfig) -> Callable:
    return import_ref(ref.factory, key, code_folders(code))


# -- data -------------------------------------------------------------------------------

class EpochPermutation(Sampler[int]):
    """One permutation of the indices per epoch, drawn from `generator` (the trainer's,
    kept in its checkpoints): exactly the order the tensor path draws."""

    def __init__(self, size: int, generator: torch.Generator):
        self.size, self.generator = size, generator

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        yield from torch.randperm(self.size, generator=self.generator).tolist()


@dataclass
class LoaderData:
    """A user's torch Datasets, served by DataLoaders: `workers` processes (from the
    trial's CPU share; none with one CPU), pinned memory on CUDA, persistent workers."""

    train: Dataset
    val: Dataset
    num_outputs: int
    task: str
    input_shape: tuple[int, ...]
    device: torch.device
    workers: int = 0
    seed: int = 0
    _train_loader: DataLoader | None = field(default=None, repr=False)
    _val_loader: DataLoader | None = field(default=None, repr=False)

    @property
    def n_train(self) -> int:
        return len(self.train)

    def _loader(self, dataset: Dataset, batch_size: int, sampler: Sampler | None) -> DataLoader:
        # the loader's own generator seeds its worker processes: the global torch RNG
        # (dropout, the model's init) is left alone, so workers or none, runs agree
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                          num_workers=self.workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=self.workers > 0,
                          generator=torch.Generator().manual_seed(self.seed))

    def _on_device(self, batches) -> Iterator:
        blocking = self.device.type != "cuda"
        for x, y in batches:
            yield (x.to(self.device, non_blocking=not blocking),
                   y.to(self.device, non_blocking=not blocking))

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator:
        if self._train_loader is None or self._train_loader.batch_size != batch_size:
            self._train_loader = self._loader(
                self.train, batch_size, EpochPermutation(len(self.train), generator))
        return self._on_device(self._train_loader)

    def val_batches(self, batch_size: int) -> Iterator:
        if self._val_loader is None or self._val_loader.batch_size != batch_size:
            self._val_loader = self._loader(self.val, batch_size, None)
        return self._on_device(self._val_loader)

    def initial_batches(self, batch_size: int) -> Iterator:
        """The untrained model's baseline is measured on the first INITIAL_EXAMPLES of
        the validation split, in this process: through a DataLoader every example costs
        a fetch and a collate, and a whole extra validation pass before training costs
        a few percent of a short run (bench.trainable) for a number that needs no more
        precision than a thousand examples give."""
        from torch.utils.data import Subset

        head = Subset(self.val, range(min(INITIAL_EXAMPLES, len(self.val))))
        return self._on_device(DataLoader(head, batch_size=batch_size))

    def train_targets(self) -> None:
        """Not known up front: the trainer collects them in its first passes."""
        return None


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise UserDataError(f"{what} is a {type(value).__name__}, not a tensor or an array")


def _pair(split: Any, name: str) -> tuple[torch.Tensor, torch.Tensor] | Dataset:
    if isinstance(split, Dataset):
        if not hasattr(split, "__len__"):
            raise UserDataError(f"the {name} Dataset has no len(): it needs one")
        if len(split) == 0:
            raise UserDataError(f"the {name} Dataset is empty")
        return split
    if isinstance(split, tuple | list) and len(split) == 2:
        x, y = (_as_tensor(v, f"{name}[{i}]") for i, v in enumerate(split))
        if len(x) != len(y):
            raise UserDataError(f"{name}: x has {len(x)} rows but y has {len(y)}")
        if len(x) == 0:
            raise UserDataError(f"{name}: has no rows")
        return x, y
    raise UserDataError(f"{name} is a {type(split).__name__}: it must be a pair (x, y) of "
                        "tensors or a torch.utils.data.Dataset of (x, y) pairs")


def _outputs(task: str, y_train: torch.Tensor, y_val: torch.Tensor | None,
             dataset: Dataset | None) -> int:
    """Classes (from the labels, or the Dataset's `classes` / `num_classes`), or the
    regression target's width (1 for (N,) targets, k for (N, k))."""
    if task == "regression":
        return 1 if y_train.dim() <= 1 else int(y_train.shape[-1])
    if dataset is not None:
        if hasattr(dataset, "classes"):
            return len(dataset.classes)
        if hasattr(dataset, "num_classes"):
            return int(dataset.num_classes)
        raise UserDataError("a classification Dataset needs a `classes` (torchvision's "
                            "convention) or `num_classes` attribute: the class count")
    labels = torch.cat([y_train.reshape(-1), y_val.reshape(-1)])
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise UserDataError("classification labels must be whole numbers (class indices); "
                            "for continuous targets set train.task: regression")
    if labels.min() < 0:
        raise UserDataError(f"classification labels must be >= 0, but one is {labels.min()}")
    return int(labels.max()) + 1


def _check_targets(task: str, y: torch.Tensor, name: str) -> torch.Tensor:
    if task == "classification":
        return y.long()
    if not y.is_floating_point():
        y = y.float()
    if not torch.isfinite(y).all():
        raise UserDataError(f"{name}: regression targets hold NaN or inf")
    return y.float()


def load_user_data(ref: UserFactory, seed: int, task: str, code: CodeConfig,
                   device: torch.device, workers: int) -> TensorData | LoaderData:
    """Call the user's data factory and wrap what it returns."""
    load = factory(ref, "train.dataset.factory", code)
    returned = load(seed, **ref.settings)
    if not isinstance(returned, tuple | list) or len(returned) != 2:
        raise UserDataError(f"{ref.factory} returned a {type(returned).__name__}: it must "
                            "return (train, val)")
    train, val = (_pair(s, n) for s, n in zip(returned, ("train", "val")))
    if isinstance(train, tuple) != isinstance(val, tuple):
        raise UserDataError("train and val must be of one kind: both (x, y) tensors or "
                            "both Datasets")
    if isinstance(train, tuple):
        (x_train, y_train), (x_val, y_val) = train, val
        outputs = _outputs(task, y_train, y_val, None)  # on the labels as given
        y_train = _check_targets(task, y_train, "train")
        y_val = _check_targets(task, y_val, "val")
        return TensorData(x_train.float(), y_train, x_val.float(), y_val, outputs,
                          task).to(device)
    x0, y0 = train[0]
    x0, y0 = torch.as_tensor(x0), torch.as_tensor(y0)
    outputs = _outputs(task, y0.reshape(1, *y0.shape) if task == "regression" else y0,
                       None, train)
    return LoaderData(train, val, outputs, task, tuple(x0.shape), device, workers, seed)


def build_user_model(ref: UserFactory, input_shape: tuple[int, ...], num_outputs: int,
                     code: CodeConfig) -> torch.nn.Module:
    build = factory(ref, "train.model.factory", code)
    model = build(input_shape, num_outputs, **ref.settings)
    if not isinstance(model, torch.nn.Module):
        raise UserDataError(f"{ref.factory} returned a {type(model).__name__}, not a "
                            "torch.nn.Module")
    return model
