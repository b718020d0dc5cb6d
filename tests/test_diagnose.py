import math

import pytest

from orchestrator.trainable.diagnose import LABELS, diagnose


def healthy():
    train = [2.3 * math.exp(-0.5 * e) + 0.1 for e in range(20)]
    val = [t + 0.05 for t in train]
    return train, val


def test_tuning_md_lr_too_high_example():
    # TUNING.md: training loss 3.2 -> 1.8 over 5 epochs, then 2.5 at epoch 6
    train = [3.2, 2.8, 2.4, 2.1, 1.8, 2.5]
    val = [3.3, 2.9, 2.5, 2.2, 1.9, 2.6]
    assert diagnose(train, val) == "lr_too_high"


def test_healthy_curve():
    assert diagnose(*healthy()) == "healthy"


def test_diverged_on_nan_or_inf():
    train, val = healthy()
    assert diagnose(train[:5] + [float("nan")], val[:6]) == "diverged"
    assert diagnose(train[:6], val[:5] + [float("inf")]) == "diverged"


def test_oscillating_loss_is_lr_too_high():
    train = [2.0, 1.5, 1.6, 1.4, 1.45, 1.3, 1.36, 1.25, 1.3, 1.2]
    assert diagnose(train, train) == "lr_too_high"


def test_slow_steady_fall_is_lr_too_low():
    train = [2.30 - 0.01 * e for e in range(20)]  # still falling at the same pace
    assert diagnose(train, train) == "lr_too_low"


def test_overfitting_needs_patience_epochs_of_rising_validation():
    train = [2.0 * 0.8**e for e in range(20)]
    val = [2.0 * 0.8**e for e in range(10)] + [0.27 * 1.06**e for e in range(1, 11)]
    assert diagnose(train, val, patience=5) == "overfitting"
    # rising for fewer than `patience` epochs is not overfitting yet
    short_val = val[:10] + [0.27 * 1.06**e for e in range(1, 4)]
    assert diagnose(train[:13], short_val, patience=5) != "overfitting"


def test_flat_loss_is_plateau():
    train = [2.30, 2.29, 2.30, 2.29, 2.295, 2.29, 2.30, 2.29, 2.29, 2.295]
    assert diagnose(train, train) == "plateau"


def test_too_few_epochs_say_nothing_but_divergence():
    assert diagnose([2.0, 3.0], [2.0, 3.0]) == "healthy"


@pytest.mark.parametrize("n", range(1, 8))
def test_labels_are_known(n):
    train = [1.0 + 0.1 * ((-1) ** e) for e in range(n)]
    assert diagnose(train, train) in LABELS
