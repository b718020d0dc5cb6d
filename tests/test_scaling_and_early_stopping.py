import pytest

from orchestrator.spec.settings import BatchScalingConfig
from orchestrator.trainable.early_stopping import EarlyStopping
from orchestrator.trainable.scaling import effective_lr


def test_sqrt_rule_tuning_md_example():
    # docs/tuning.md: batch 32 -> 128 (k = 4) takes lr 0.01 -> 0.02 under the square-root rule
    scaling = BatchScalingConfig(rule="sqrt", reference_batch_size=32)
    assert effective_lr(0.01, 128, scaling) == pytest.approx(0.02, rel=1e-12)


@pytest.mark.parametrize(
    "rule, batch, expected",
    [("linear", 128, 0.04), ("linear", 16, 0.005), ("none", 128, 0.01), ("sqrt", 8, 0.005)],
)
def test_scaling_rules(rule, batch, expected):
    scaling = BatchScalingConfig(rule=rule, reference_batch_size=32)
    assert effective_lr(0.01, batch, scaling) == pytest.approx(expected, rel=1e-12)


def tuning_md_accuracy_curve() -> list[float]:
    # docs/tuning.md: val acc climbs 65% -> 82% over 20 epochs, holds at 82-83% for
    # epochs 21-25, drops to 81.5% at epoch 26 (and stays lower after)
    climb = [0.65 + (0.82 - 0.65) * i / 19 for i in range(20)]
    hold = [0.821, 0.826, 0.824, 0.828, 0.830]
    return climb + hold + [0.815, 0.814, 0.816, 0.813, 0.812, 0.811]


def test_early_stopping_tuning_md_example():
    stopper = EarlyStopping(mode="max", patience=5)
    stopped_at = None
    for epoch, value in enumerate(tuning_md_accuracy_curve(), start=1):
        if stopper.update(value, epoch):
            stopped_at = epoch
            break
    assert stopper.best_epoch == 25
    assert stopper.best == pytest.approx(0.830)
    assert stopped_at == 30  # five epochs without improvement after the best


def test_min_delta_ignores_tiny_improvements():
    stopper = EarlyStopping(mode="min", patience=2, min_delta=0.01)
    assert not stopper.update(1.0, 1)
    assert not stopper.update(0.995, 2)  # within min_delta: not an improvement
    assert stopper.update(0.992, 3)
    assert stopper.best_epoch == 1


def test_patience_none_never_stops():
    stopper = EarlyStopping(mode="min", patience=None)
    assert not any(stopper.update(1.0, e) for e in range(1, 100))


def test_nan_is_never_an_improvement():
    stopper = EarlyStopping(mode="max", patience=3)
    stopper.update(float("nan"), 1)
    assert stopper.best is None
    stopper.update(0.5, 2)
    assert stopper.best_epoch == 2
