"""A user's data checked where the trial loads it, so that its faults are named as the
data's: one line naming `train.dataset.factory`, the split and the first bad row, an
error of the data that is not retried (`not_retried`), rather than a sweep of trials read
as diverged (NaN or inf in the inputs), a silently grown class count or a bare IndexError
from the loss (labels that are not class indices).

Tensors are checked whole when they are loaded (a pass of `torch.isfinite`, once per
trial). A Dataset cannot be read whole cheaply: its labels are checked batch by batch as
the loader serves them (two comparisons of a batch's labels, before they reach the
device, where an out-of-range label is a device-side assert), and its inputs only when a
loss is not finite: the batch that made it is drawn again and looked at.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from orchestrator.trainable.not_retried import DataOrCodeError

KEY = "train.dataset.factory"


class UserDataError(DataOrCodeError):
    """What a data factory returned cannot be trained on (a fault of the data or the
    code, not of the machine: retrying the trial does not help)."""


def first_non_finite(values: torch.Tensor) -> tuple[int, ...] | None:
    """The index of the first NaN or inf in `values` (row first), or None."""
    if not values.is_floating_point():
        return None
    bad = ~torch.isfinite(values)
    if not bool(bad.any()):
        return None
    return tuple(int(i) for i in bad.nonzero()[0])


def _position(index: Sequence[int]) -> str:
    """Where in one example: a feature of a row, or a position in an image."""
    return f"feature {index[0]}" if len(index) == 1 else f"{tuple(index)}"


NOT_FINITE = "the data is not finite (not a divergence of the training); fix or drop"


def check_finite(values: torch.Tensor, split: str, what: str) -> None:
    """A split's inputs (`what`: "x") or a regression's targets ("y") as tensors: every
    value a finite number."""
    index = first_non_finite(values)
    if index is not None:
        where = f"row {index[0]}" + (f", {_position(index[1:])}" if len(index) > 1 else "")
        raise UserDataError(f"{KEY}: {split} {what} holds {values[index].item()} at "
                            f"{where}: {NOT_FINITE} those values")


def check_example(x: torch.Tensor, y: torch.Tensor, split: str, row: int,
                  regression: bool) -> None:
    """One example of a Dataset (`split[row]`): its input, and a regression's target."""
    for what, values in (("input", x), *((("target", y),) if regression else ())):
        index = first_non_finite(values)
        if index is not None:
            where = f" at {_position(index)}" if index else ""
            raise UserDataError(f"{KEY}: {split}[{row}]'s {what} holds "
                                f"{values[index].item()}{where}: {NOT_FINITE} that example")


def _first(mask: torch.Tensor) -> int:
    return int(mask.nonzero()[0])


def tensor_classes(y_train: torch.Tensor, y_val: torch.Tensor, declared: int | None) -> int:
    """The class count of labels given as tensors, checked: `declared` (the factory's
    `num_classes` setting) when there is one, else the largest label + 1. Every label a
    whole number in [0, count); with no count declared, every index below the largest
    one a label somewhere, for a gap means the labels are not class indices (labels
    1..10, or a 255 standing for "unknown", would otherwise grow the count by classes
    nothing is ever labelled with). A stray label above the intended range that leaves
    no gap (10 among 0..9, each of them present) cannot be told from one more class:
    `num_classes` catches it."""
    splits = [("train", y_train.reshape(len(y_train), -1)),
              ("val", y_val.reshape(len(y_val), -1))]
    for split, y in splits:
        if y.is_floating_point():
            bad = ~torch.isfinite(y) | (y != y.round())
            if bool(bad.any()):
                row, col = (int(i) for i in bad.nonzero()[0])
                raise UserDataError(
                    f"{KEY}: {split} label {y[row, col].item()} at row {row} is not a whole "
                    "number: classification labels must be whole numbers (class indices); "
                    "for continuous targets set train.task: regression")
    count = declared if declared is not None else \
        int(max(y.max() for _, y in splits)) + 1
    where = f"train.dataset.num_classes is {declared}" if declared is not None else \
        "class indices from 0"
    for split, y in splits:
        bad = (y < 0) | (y >= count)
        if bool(bad.any()):
            row = _first(bad.any(1))
            label = int(y[row][bad[row]][0])
            raise UserDataError(f"{KEY}: {split} label {label} at row {row} is outside "
                                f"[0, {count}) ({where})")
    if declared is not None:
        return count
    present = torch.unique(torch.cat([y.reshape(-1) for _, y in splits])).tolist()
    if len(present) < count:
        first = next(i for i, label in enumerate(present) if label != i)
        gap = f"{first}" if present[first] == first + 1 else f"in {first}..{present[first] - 1}"
        split, y = next((s, y) for s, y in splits if bool((y == count - 1).any()))
        raise UserDataError(
            f"{KEY}: {split} label {count - 1} at row {_first((y == count - 1).any(1))} "
            f"would make {count} classes, but no label is {gap}: labels must be class "
            "indices 0..K-1 (the class count is the largest label + 1, or set "
            "train.dataset.num_classes)")
    return count


def first_bad_label(y: torch.Tensor, count: int) -> int | None:
    """The position in a batch of labels of the first outside [0, count), or None."""
    bad = (y < 0) | (y >= count)
    if not bool(bad.any()):
        return None
    return _first(bad.reshape(len(y), -1).any(1))


def label_error(split: str, row: int, label: object, count: int,
                declared_by: str) -> UserDataError:
    """A Dataset's label outside [0, count) at `split[row]`; `declared_by` says where the
    count came from."""
    return UserDataError(
        f"{KEY}: {split}[{row}] has label {label}, outside [0, {count}) ({declared_by}): "
        f"labels must be class indices 0..{count - 1}")
