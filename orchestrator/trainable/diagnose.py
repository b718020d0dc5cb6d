"""Diagnosis of a trial from its own loss curves (TUNING.md).

Labels, checked in this order (the first that fits wins):
  diverged      a loss is NaN or infinite
  lr_too_high   training loss falls fast, then rises well above its best, or oscillates
  overfitting   training loss falls while validation loss rises for >= patience epochs
  lr_too_low    training loss falls steadily with no levelling by the end
  plateau       training loss barely moves from the start
  healthy       none of the above
"""

from __future__ import annotations

import math
from collections.abc import Sequence

LABELS = ("diverged", "lr_too_high", "overfitting", "lr_too_low", "plateau", "healthy")

# A rise of more than 10% above the best training loss so far is not noise:
# TUNING.md's example rises 39% (1.8 -> 2.5).
RISE_FRACTION = 0.10
# Oscillation: at least this share of epoch-to-epoch changes are rises of > 2%.
OSCILLATION_SHARE = 0.4
OSCILLATION_STEP = 0.02
# Overfitting: validation loss this much above its minimum, while training improves.
OVERFIT_RISE = 0.02
# Plateau: less than 5% total improvement of the training loss, not steadily falling.
PLATEAU_DROP = 0.05
# Too low: at least 70% of epochs lower the loss, and the last third still falls at
# least half as fast as the first third (a healthy curve levels off: its late
# slope is far flatter than its early one).
STEADY_SHARE = 0.7
NO_LEVELLING_RATIO = 0.5
MIN_EPOCHS = 3  # fewer epochs say nothing about a curve's shape


def _finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def _rel_slope(values: Sequence[float]) -> float:
    """Mean relative fall per epoch over `values` (positive when falling)."""
    if len(values) < 2 or values[0] <= 0:
        return 0.0
    return (values[0] - values[-1]) / values[0] / (len(values) - 1)


def lr_too_high(train: Sequence[float]) -> bool:
    best = train[0]
    for value in train[1:]:
        if value > best * (1 + RISE_FRACTION):
            return True
        best = min(best, value)
    rises = sum(1 for a, b in zip(train, train[1:]) if b > a * (1 + OSCILLATION_STEP))
    return len(train) >= 5 and rises / (len(train) - 1) >= OSCILLATION_SHARE


def overfitting(train: Sequence[float], val: Sequence[float], patience: int) -> bool:
    low = min(range(len(val)), key=val.__getitem__)
    epochs_after = len(val) - 1 - low
    return (
        epochs_after >= patience
        and val[-1] > val[low] * (1 + OVERFIT_RISE)
        and train[-1] < train[low]
    )


def plateau(train: Sequence[float]) -> bool:
    return train[0] > 0 and (train[0] - min(train)) / train[0] < PLATEAU_DROP


def lr_too_low(train: Sequence[float]) -> bool:
    falls = sum(1 for a, b in zip(train, train[1:]) if b < a)
    third = max(2, len(train) // 3)
    early, late = _rel_slope(train[:third]), _rel_slope(train[-third:])
    return (
        falls / (len(train) - 1) >= STEADY_SHARE
        and late > 0
        and late >= NO_LEVELLING_RATIO * early
    )


def diagnose(train_loss: Sequence[float], val_loss: Sequence[float], patience: int = 5) -> str:
    """Label a trial's curves (one value per epoch) with one of `LABELS`."""
    if not (_finite(train_loss) and _finite(val_loss)):
        return "diverged"
    if len(train_loss) < MIN_EPOCHS:
        return "healthy"
    if lr_too_high(train_loss):
        return "lr_too_high"
    if overfitting(train_loss, val_loss, patience):
        return "overfitting"
    if lr_too_low(train_loss):
        return "lr_too_low"
    if plateau(train_loss):
        return "plateau"
    return "healthy"
