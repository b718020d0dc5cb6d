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
from orchestrator.trainable.data_checks import (
    UserDataError,
    check_example,
    check_finite,
    first_bad_label,
    first_non_finite,
    label_error,
    tensor_classes,
)

__all__ = ["LoaderData", "UserDataError", "build_user_model", "code_folders",
           "load_user_data"]

# how many validation examples the untrained model's loss is measured on (a Dataset)
INITIAL_EXAMPLES = 1024


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
        self.order: list[int] = []  # this epoch's: which example each position holds

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        self.order = torch.randperm(self.size, generator=self.generator).tolist()
        yield from self.order


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
    classes_from: str = "the Dataset's classes"  # where the class count came from
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

    def _on_device(self, batches, split: str, rows) -> Iterator:
        """The batches on the trial's device, a classification's labels checked first
        (`rows(b, n)`: the Dataset indices of batch b's n examples)."""
        blocking = self.device.type != "cuda"
        classification = self.task == "classification"
        for b, (x, y) in enumerate(batches):
            bad = first_bad_label(y, self.num_outputs) if classification else None
            if bad is not None:
                raise label_error(split, rows(b, len(y))[bad], y[bad].tolist(),
                                  self.num_outputs, self.classes_from)
            yield (x.to(self.device, non_blocking=not blocking),
                   y.to(self.device, non_blocking=not blocking))

    def _train(self, batch_size: int, generator: torch.Generator) -> DataLoader:
        if self._train_loader is None or self._train_loader.batch_size != batch_size:
            self._train_loader = self._loader(
                self.train, batch_size, EpochPermutation(len(self.train), generator))
        return self._train_loader

    def _val(self, batch_size: int) -> DataLoader:
        if self._val_loader is None or self._val_loader.batch_size != batch_size:
            self._val_loader = self._loader(self.val, batch_size, None)
        return self._val_loader

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator:
        loader = self._train(batch_size, generator)
        # the sampler's order is this epoch's once its first batch is drawn (in order:
        # the DataLoader hands batches over as the sampler listed them)
        return self._on_device(loader, "train", lambda b, n: loader.sampler.order[
            b * batch_size:b * batch_size + n])

    def val_batches(self, batch_size: int) -> Iterator:
        return self._on_device(self._val(batch_size), "val",
                               lambda b, n: range(b * batch_size, b * batch_size + n))

    def initial_batches(self, batch_size: int) -> Iterator:
        """The untrained model's baseline is measured on the first INITIAL_EXAMPLES of
        the validation split, in this process: through a DataLoader every example costs
        a fetch and a collate, and a whole extra validation pass before training costs
        a few percent of a short run (bench.trainable) for a number that needs no more
        precision than a thousand examples give."""
        from torch.utils.data import Subset

        head = Subset(self.val, range(min(INITIAL_EXAMPLES, len(self.val))))
        return self._on_device(DataLoader(head, batch_size=batch_size), "val",
                               lambda b, n: range(b * batch_size, b * batch_size + n))

    def check_non_finite(self, split: str, step: int | None, batch_size: int) -> None:
        """A loss went NaN or inf: was it the data? Train: the batch of `step` in this
        epoch is drawn again and each of its examples looked at; val: the split is read
        through its loader up to the first batch with a non-finite input. Raises
        UserDataError naming the first such example; returns when the data is finite
        (then it was the training). Only on that path: the cost of a batch, or of one
        pass through the validation split's inputs."""
        regression = self.task == "regression"
        if split == "train":
            loader = self._train_loader
            if loader is None or step is None:
                return
            for row in loader.sampler.order[step * batch_size:(step + 1) * batch_size]:
                x, y = self.train[row]
                check_example(torch.as_tensor(x), torch.as_tensor(y), "train", row,
                              regression)
            return
        for b, (x, y) in enumerate(self._val(batch_size)):
            for values in (x, *((y,) if regression else ())):
                index = first_non_finite(values)
                if index is not None:
                    row = b * batch_size + index[0]
                    check_example(x[index[0]], y[index[0]], "val", row, regression)

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


def _declared_classes(settings: dict) -> int | None:
    """The class count the spec declares: the factory's own `num_classes` setting (a
    factory that takes one is told the count), else None."""
    declared = settings.get("num_classes")
    if declared is None:
        return None
    if isinstance(declared, bool) or not isinstance(declared, int) or declared < 1:
        raise UserDataError(f"train.dataset.num_classes is {declared!r}, but must be a "
                            "whole number >= 1: the class count")
    return declared


def _dataset_classes(dataset: Dataset, declared: int | None) -> tuple[int, str]:
    """A classification Dataset's class count and where it came from: its `classes`
    (torchvision's convention) or `num_classes`, else the spec's `num_classes`."""
    if hasattr(dataset, "classes"):
        return len(dataset.classes), f"the Dataset's {len(dataset.classes)} classes"
    if hasattr(dataset, "num_classes"):
        return int(dataset.num_classes), f"the Dataset's num_classes {dataset.num_classes}"
    if declared is not None:
        return declared, f"train.dataset.num_classes is {declared}"
    raise UserDataError("a classification Dataset needs a `classes` (torchvision's "
                        "convention) or `num_classes` attribute: the class count")


def _regression_targets(y: torch.Tensor, split: str) -> torch.Tensor:
    y = y.float()
    check_finite(y, split, "y")
    return y


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
    declared = _declared_classes(ref.settings)
    if isinstance(train, tuple):
        (x_train, y_train), (x_val, y_val) = train, val
        x_train, x_val = x_train.float(), x_val.float()  # as trained on: no overflow after
        check_finite(x_train, "train", "x")
        check_finite(x_val, "val", "x")
        if task == "classification":  # on the labels as given
            outputs = tensor_classes(y_train, y_val, declared)
            y_train, y_val = y_train.long(), y_val.long()
        else:
            y_train, y_val = _regression_targets(y_train, "train"), \
                _regression_targets(y_val, "val")
            outputs = 1 if y_train.dim() <= 1 else int(y_train.shape[-1])
        return TensorData(x_train, y_train, x_val, y_val, outputs, task).to(device)
    x0, y0 = train[0]
    x0, y0 = torch.as_tensor(x0), torch.as_tensor(y0)
    if task == "classification":
        outputs, classes_from = _dataset_classes(train, declared)
    else:
        outputs, classes_from = (1 if y0.dim() == 0 else int(y0.shape[-1])), ""
    return LoaderData(train, val, outputs, task, tuple(x0.shape), device, workers, seed,
                      classes_from)


def build_user_model(ref: UserFactory, input_shape: tuple[int, ...], num_outputs: int,
                     code: CodeConfig) -> torch.nn.Module:
    build = factory(ref, "train.model.factory", code)
    model = build(input_shape, num_outputs, **ref.settings)
    if not isinstance(model, torch.nn.Module):
        raise UserDataError(f"{ref.factory} returned a {type(model).__name__}, not a "
                            "torch.nn.Module")
    return model
