"""The mechanisms of issue #21, one hand-made curve each (docs/diagnosis.md).

Each test fails on the diagnosis before the issue: a train loss read against the
untrained model's validation loss; "learned, then collapsed to chance" read as a capacity
limit or as healthy; a loss at the chance level read as a capacity limit; a rising
validation loss missed because the objective (accuracy) was noisy; a short run still
improving read as levelled; a capacity limit claimed without evidence.
"""

import math

import pytest

from orchestrator.diagnosis import diagnose

TEN = {"stop_reason": "completed", "initial_val_loss": 2.31, "initial_val_acc": 0.1,
       "chance_val_loss": 2.303, "chance_val_acc": 0.1, "config.epochs": 20}


def rows(train, val, acc=None, lr=1e-3, r2=None):
    """History rows, one per epoch; `lr` a constant or one value per epoch."""
    n = len(train)
    lrs = lr if isinstance(lr, list) else [lr] * n
    out = []
    for e in range(n):
        row = {"epoch": e + 1, "train_loss": train[e], "val_loss": val[e], "lr": lrs[e]}
        if acc is not None:
            row["val_acc"] = acc[e]
        if r2 is not None:
            row["val_r2"], row["val_mae"] = r2[e], math.sqrt(val[e])
        out.append(row)
    return out


def line(a, b, n):
    return [a + (b - a) * e / (n - 1) for e in range(n)]


# -- like with like -------------------------------------------------------------------

def test_a_train_loss_is_not_compared_with_the_untrained_validation_loss():
    """A slow, steady fall at lr 1e-4 (SGD without momentum, dropout on): the train loss
    of epoch 2 (1.11) sits above the untrained model's *validation* loss (1.03), as the
    mean over an epoch of dropout does; val_acc rises 0.41 -> 0.59 on three classes. The
    old rule read it `diverged`."""
    trial = {"stop_reason": "completed", "initial_val_loss": 1.03, "initial_val_acc": 0.45,
             "chance_val_loss": 1.0986, "chance_val_acc": 0.34, "config.epochs": 20}
    train = [1.12, 1.11] + line(1.10, 0.90, 18)
    val = line(1.02, 0.80, 20)
    acc = line(0.41, 0.59, 20)
    found = diagnose(rows(train, val, acc, lr=1e-4), trial)
    assert found.label == "lr_too_low", found
    assert "still falling" in found.reason


def test_beating_chance_is_measured_from_chance_not_from_the_untrained_model():
    """The same run thrown above its own start at epoch 3 (its train loss, 1.3 against
    its first epoch's 1.12): it learned (val_acc 0.59 on three classes, chance 0.34), so
    the rate is too high, not a divergence, even though the untrained net scored 0.45."""
    trial = {"stop_reason": "completed", "initial_val_loss": 1.03, "initial_val_acc": 0.45,
             "chance_val_loss": 1.0986, "chance_val_acc": 0.34, "config.epochs": 20}
    train = [1.12, 1.05, 1.30] + line(1.0, 0.80, 17)
    val = [1.0, 0.98, 1.02] + line(0.97, 0.78, 17)
    acc = [0.41, 0.45, 0.43] + line(0.47, 0.59, 17)
    found = diagnose(rows(train, val, acc, lr=0.5), trial)
    assert found.label == "lr_too_high", found
    assert "1.3" in found.reason and "1.12" in found.reason


# -- learned, then collapsed ----------------------------------------------------------

def test_learned_then_blown_up_at_a_one_cycle_peak_is_lr_too_high():
    """val_acc 0.98, then the one-cycle peak throws the train loss to 1e6 and the net sits
    at chance for the rest of the run while the rate anneals: not a capacity limit."""
    lr = [0.04, 0.3, 0.6, 1.0, 0.9] + line(0.8, 0.001, 15)
    train = [1.5, 0.3, 0.1, 1e6] + [2.302] * 16
    val = [0.8, 0.15, 0.08, 40.0] + [2.303] * 16
    acc = [0.75, 0.95, 0.98, 0.1] + [0.1] * 16
    found = diagnose(rows(train, val, acc, lr=lr), TEN, "val_loss", "min")
    assert found.label == "lr_too_high", found
    assert "collapsed to chance" in found.reason and "0.98" in found.reason


def test_learned_then_blown_up_at_a_warm_restart_is_lr_too_high():
    lr = [0.5, 0.35, 0.15, 0.02] * 2 + [0.5, 0.47, 0.4, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01,
                                         0.005, 0.002, 0.001]
    train = [1.0, 0.2, 0.05, 0.02, 3e4] + [2.302] * 15
    val = [0.5, 0.12, 0.07, 0.06, 9e3] + [2.303] * 15
    acc = [0.9, 0.96, 0.98, 0.98, 0.1] + [0.1] * 15
    found = diagnose(rows(train, val, acc, lr=lr), TEN, "val_loss", "min")
    assert found.label == "lr_too_high", found


def test_learned_then_collapsed_to_chance_is_not_healthy():
    """A binary task: val_acc reached 0.77, then a spike during the warmup sent the train
    loss back to ln 2 and the model predicts the majority class until early stopping
    ends the run. The old rule, blind to rises while the rate rises, read it healthy."""
    trial = {"stop_reason": "early_stopping", "initial_val_loss": 0.70,
             "initial_val_acc": 0.5, "chance_val_loss": 0.6931, "chance_val_acc": 0.5,
             "config.epochs": 20}
    lr = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.32, 0.32, 0.32]
    train = [0.66, 0.58, 0.52, 0.50, 0.49, 3.0, 0.6932, 0.6931, 0.6932]
    val = [0.64, 0.56, 0.50, 0.49, 0.49, 0.75, 0.6931, 0.6931, 0.6931]
    acc = [0.62, 0.70, 0.76, 0.77, 0.76, 0.5, 0.5, 0.5, 0.5]
    found = diagnose(rows(train, val, acc, lr=lr), trial)
    assert found.label == "lr_too_high", found
    assert "0.77" in found.reason and "collapsed to chance at epoch 6" in found.reason


# -- the chance level is the rate's doing (unless a smooth descent stopped there) ------

def test_a_loss_at_the_chance_level_at_a_tiny_rate_is_lr_too_low():
    """A net (layer norm: untrained 2.45) drifts smoothly to the chance loss and stays
    there (100-101% of it) at lr 1e-5, val_acc at chance: it is not learning."""
    train = line(2.46, 2.31, 8) + [2.305] * 12
    val = line(2.44, 2.31, 8) + [2.306] * 12
    acc = [0.1] * 20
    found = diagnose(rows(train, val, acc, lr=1e-5), {**TEN, "initial_val_loss": 2.45})
    assert found.label == "lr_too_low", found
    assert "not learning" in found.reason and "capacity" not in found.reason


def test_a_loss_at_the_chance_level_at_a_huge_rate_is_lr_too_high():
    """The same level, but the train loss jumps from epoch to epoch (a rate that throws
    the weights about): too high, not too low."""
    train = [2.41, 2.34, 2.33, 2.35, 2.34, 2.36, 2.33, 2.35, 2.32, 2.34, 2.33, 2.36]
    val = [2.34, 2.31, 2.33, 2.30, 2.34, 2.32, 2.35, 2.31, 2.33, 2.34, 2.32, 2.33]
    acc = [0.1, 0.11, 0.09, 0.1, 0.1, 0.08, 0.11, 0.1, 0.09, 0.1, 0.1, 0.09]
    found = diagnose(rows(train, val, acc, lr=1.0), {**TEN, "config.epochs": 12})
    assert found.label in ("lr_too_high", "diverged"), found


def test_a_regression_at_the_chance_level_at_a_huge_rate_is_lr_too_high():
    """A regression falls to the loss of predicting the mean in two epochs and sits there
    (R² about 0) with a jumpy loss: the rate, not the capacity."""
    trial = {"stop_reason": "completed", "initial_val_loss": 259.0, "chance_val_loss": 27.5,
             "config.epochs": 12}
    train = [170, 29.6, 26.6, 26.4, 26.7, 26.4, 26.6, 26.3, 26.7, 26.4, 26.6, 26.5]
    val = [29.5, 28.6, 27.8, 27.6, 27.9, 27.5, 27.8, 27.6, 28.0, 27.5, 27.7, 27.9]
    r2 = [1 - v / 27.5 for v in val]
    found = diagnose(rows(train, val, lr=1.0, r2=r2), trial, "val_loss", "min")
    assert found.label in ("lr_too_high", "diverged"), found
    assert "R²" in found.reason or "val_r2" in found.reason


# -- underfitting only on evidence ----------------------------------------------------

def test_a_levelled_loss_whose_train_loss_keeps_falling_away_from_validation_is_healthy():
    """val loss levels at 0.97 (55% of chance) while the train loss keeps creeping down
    (0.80 -> 0.69): the model fits its training set beyond what generalises, so it has
    capacity to spare; the old rule claimed "too little capacity"."""
    trial = {"stop_reason": "completed", "initial_val_loss": 2.0, "initial_val_acc": 0.1,
             "chance_val_loss": 1.76, "chance_val_acc": 0.34, "config.epochs": 15}
    train = [1.59, 1.25, 1.15, 1.08, 0.99, 0.94, 0.90, 0.86, 0.82, 0.80, 0.76, 0.745, 0.72,
             0.70, 0.69]
    val = [1.35, 1.24, 1.18, 1.14, 1.09, 1.06, 1.04, 1.01, 1.0, 0.988, 0.995, 0.966, 1.0,
           0.974, 0.967]
    acc = [0.56, 0.59, 0.60, 0.65, 0.65, 0.70, 0.68, 0.70, 0.70, 0.72, 0.70, 0.70, 0.69,
           0.72, 0.70]
    found = diagnose(rows(train, val, acc, lr=3e-3), trial)
    assert found.label == "healthy", found


def test_a_capacity_limit_shows_train_and_validation_levelling_together():
    """The evidence underfitting needs: well below chance (58%), both losses levelled
    together at a rate that still moves weights; still falling slowly, or flat."""
    train = [2.3 - 1.0 * (1 - 0.8 ** e) for e in range(30)]
    val = [t + 0.02 for t in train]
    acc = [0.1 + 0.4 * (1 - 0.8 ** e) for e in range(30)]
    found = diagnose(rows(train, val, acc, lr=3e-3), {**TEN, "config.epochs": 30})
    assert found.label == "underfitting", found
    assert "levelled off" in found.reason
    train = train[:15] + [1.3, 1.302, 1.299, 1.301, 1.3, 1.3, 1.301, 1.299, 1.3, 1.3, 1.301,
                          1.3, 1.3, 1.299, 1.3]
    val = val[:15] + [1.34, 1.33, 1.335, 1.34, 1.33, 1.332, 1.338, 1.34, 1.335, 1.33, 1.34,
                      1.336, 1.333, 1.339, 1.34]
    found = diagnose(rows(train, val, acc, lr=3e-3), {**TEN, "config.epochs": 30})
    assert found.label == "underfitting", found


# -- overfitting on the validation loss too ---------------------------------------------

def test_a_rising_validation_loss_is_overfitting_though_the_objective_is_noisy():
    """30% label noise, a wide net: the val loss rises 0.82 -> 2.7 while the train loss
    falls 1.09 -> 0.14; val_acc (the objective) only wobbles around 0.6. The old rule
    judged the objective alone and read the still-falling train loss as lr_too_low."""
    trial = {"stop_reason": "completed", "initial_val_loss": 1.1, "initial_val_acc": 0.33,
             "chance_val_loss": 1.0986, "chance_val_acc": 0.34, "config.epochs": 30}
    train = line(1.09, 0.14, 30)
    val = [0.95, 0.86, 0.82] + line(0.9, 2.7, 27)
    acc = [0.55 + 0.04 * ((e * 7) % 5 - 2) / 2 for e in range(30)]
    found = diagnose(rows(train, val, acc, lr=3e-3), trial)
    assert found.label == "overfitting", found
    assert "val loss" in found.reason and "2.7" in found.reason


# -- a completed run still improving at its end ----------------------------------------

@pytest.mark.parametrize("val", [[1.6, 0.9, 0.45], [2.1, 1.6, 1.0, 0.5]])
def test_a_short_planned_run_still_improving_fast_is_not_healthy(val):
    """Planned for a few epochs and still improving fast at the end (val_acc 0.57 ->
    0.92, the last epoch a quarter of the val loss's fall): it ran out of epochs."""
    planned = len(val)
    train = [v * 1.2 for v in val]
    acc = [0.57, 0.78, 0.88, 0.92][-planned:]
    found = diagnose(rows(train, val, acc, lr=0.01), {**TEN, "config.epochs": planned})
    assert found.label == "lr_too_low", found
    assert f"{planned} planned epochs" in found.reason


def test_a_short_planned_run_that_levelled_is_healthy():
    train, val, acc = [1.53, 0.364, 0.185], [0.502, 0.19, 0.111], [0.83, 0.936, 0.958]
    found = diagnose(rows(train, val, acc, lr=0.1), {**TEN, "config.epochs": 3})
    assert found.label == "healthy", found


# -- what must not change -------------------------------------------------------------

def test_fallback_start_without_the_untrained_model():
    """A user's own loop records no baselines: the higher of the first epoch's train and
    val losses stands in for the untrained model's loss, so a first epoch that learned
    is no blow-up."""
    train = [3.0] + [2.3 * 0.6 ** e + 0.01 for e in range(1, 20)]
    val = [1.2] + [t * 1.05 for t in train[1:]]
    found = diagnose(rows(train, val, lr=0.1), {"stop_reason": "completed"}, "val_loss", "min")
    assert found.label == "healthy", found


# -- what a rise, a jump, a recovery and a fall are measured against -----------------

def test_a_small_rise_of_a_tiny_validation_loss_is_not_overfitting():
    """The quickstart's best trial: val loss 0.0476 -> 0.053 (13% of its level, 0.8% of
    ln 2: a few examples of 360 going from sure to unsure) while val_acc holds at 0.98.
    The share of the best loss read it as overfitting; what an example adds going from
    sure to unsure is the yardstick."""
    train = [2.3 * 0.5 ** e + 0.005 for e in range(12)]
    val = [1.2, 0.6, 0.3, 0.15, 0.08, 0.055, 0.0476, 0.048, 0.0478, 0.053, 0.0535, 0.053]
    acc = [0.7, 0.85, 0.92, 0.95, 0.97, 0.98, 0.981, 0.98, 0.981, 0.98, 0.979, 0.98]
    trial = {**TEN, "stop_reason": "early_stopping"}
    found = diagnose(rows(train, val, acc, lr=0.1), trial)
    assert found.label == "healthy", found
    # the same relative rise at a loss that is a share of ln 2 is overfitting (16% of it
    # here) though it is under 10% of its best
    val = [1.35, 1.22, 1.09, 1.04, 1.02, 0.953, 0.965, 0.987, 1.04, 1.073, 1.111]
    train = [1.58, 1.22, 1.03, 0.88, 0.80, 0.73, 0.63, 0.56, 0.50, 0.45, 0.38]
    acc = [0.54, 0.61, 0.65, 0.68, 0.64, 0.73, 0.72, 0.717, 0.70, 0.704, 0.708]
    trial = {"stop_reason": "early_stopping", "initial_val_loss": 1.96, "initial_val_acc": 0.14,
             "chance_val_loss": 1.756, "chance_val_acc": 0.34, "config.epochs": 15}
    found = diagnose(rows(train, val, acc, lr=1.3e-3), trial)
    assert found.label == "overfitting", found
    assert "of ln 2" in found.reason


def test_a_train_loss_jittered_by_dropout_alone_is_no_rate_too_high():
    """At the chance level with dropout 0.5 at lr 3e-4: the train loss jitters (a mean
    over fresh dropout masks) while the validation loss falls without a single rise. The
    rate is too small; only both curves jumping says the steps are too large."""
    trial = {"stop_reason": "completed", "initial_val_loss": 1.135, "initial_val_acc": 0.31,
             "chance_val_loss": 1.0999, "chance_val_acc": 0.31, "config.epochs": 30}
    train = [1.119 - 0.0012 * e + (0.004 if e % 2 else -0.002) for e in range(30)]
    val = line(1.132, 1.089, 30)
    acc = [0.308] * 27 + [0.317, 0.325, 0.325]
    found = diagnose(rows(train, val, acc, lr=3e-4), trial)
    assert found.label == "lr_too_low", found
    assert "not learning" in found.reason
    # the same train loss with a validation loss that jumps too: steps too large
    val = [v + (0.01 if e % 2 else -0.01) for e, v in enumerate(val)]
    found = diagnose(rows(train, val, acc, lr=3e-4), trial)
    assert found.label == "lr_too_high", found


def test_a_first_epoch_blow_up_that_left_the_model_at_chance_is_no_recovery():
    """AdamW at lr 0.1: the first epoch's train loss 8.1 (4.3x the untrained model's
    1.89), and the model after it at 95% of the chance loss with val_acc at chance: it
    learned nothing in that epoch, so it did not recover within it. It later edges past
    chance (val_acc 0.50 on three classes) with a val loss stuck near chance: the rate is
    too high, not healthy."""
    trial = {"stop_reason": "early_stopping", "initial_val_loss": 1.894,
             "initial_val_acc": 0.31, "chance_val_loss": 1.783, "chance_val_acc": 0.33,
             "config.epochs": 25}
    train = [8.10, 1.75, 1.726, 1.714, 1.72, 1.604, 1.644, 1.616]
    val = [1.699, 1.697, 1.722, 1.698, 1.753, 1.737, 1.757, 1.931]
    acc = [0.354, 0.358, 0.333, 0.346, 0.479, 0.413, 0.446, 0.504]
    found = diagnose(rows(train, val, acc, lr=0.1), trial, "val_loss", "min")
    assert found.label == "lr_too_high", found
    assert "4.28x" in found.reason


def test_a_steady_fall_below_the_chance_loss_is_not_levelled():
    """A regression at lr 1e-4 on unscaled targets: the untrained net starts at 9x the
    chance loss (predicting the mean), plunges to it, then falls steadily below it to
    half of it, still falling at the end. Counted from the untrained start the last third
    is 6% of the fall ("levelled": underfitting); the task is learnt below the chance
    loss, and there the last third brought all of it."""
    trial = {"stop_reason": "completed", "initial_val_loss": 240.7,
             "chance_val_loss": 27.52, "config.epochs": 25}
    train = [233, 225, 217, 205, 192, 177, 161, 143, 126, 108, 92, 76, 62.5, 50.6, 41.0,
             33.4, 27.6, 23.4, 20.4, 18.35, 16.9, 15.8, 15.0, 14.4, 13.86]
    val = [233, 225, 215, 203, 188, 173, 156, 138, 120, 103, 86.6, 71.8, 58.9, 48.1, 39.2,
           32.4, 27.4, 23.65, 21.05, 19.18, 17.74, 16.72, 15.88, 15.21, 14.67]
    r2 = [1 - v / 27.52 for v in val]
    found = diagnose(rows(train, val, lr=1e-4, r2=r2), trial, "val_loss", "min")
    assert found.label == "lr_too_low", found
    assert "below the chance loss" in found.reason


# -- what the second held-out part showed (heldout2) -----------------------------------

def test_a_validation_loss_bouncing_at_a_low_level_under_a_smooth_train_loss_is_healthy():
    """A CNN with batch norm at lr 0.08: the train loss falls without a single rise to 0.03
    while the val loss bounces 0.094 <-> 0.173 (50% per epoch in log terms, but 2% of the
    chance loss 2.31) at val_acc 0.96. Steps too large throw the weights and so both
    curves; a bounce this small for the task, alone, is a sharp minimum seen through a
    small split. The old rule read it lr_too_high."""
    train = [2.03, 0.97, 0.32, 0.17, 0.103, 0.078, 0.064, 0.046, 0.037, 0.0365, 0.030]
    val = [1.97, 1.21, 0.59, 0.29, 0.41, 0.187, 0.120, 0.145, 0.094, 0.173, 0.134]
    acc = [0.16, 0.47, 0.82, 0.91, 0.88, 0.95, 0.969, 0.95, 0.961, 0.925, 0.958]
    trial = {**TEN, "stop_reason": "early_stopping", "config.epochs": 12}
    found = diagnose(rows(train, val, acc, lr=0.08), trial)
    assert found.label == "healthy", found
    # the same val loss with a train loss thrown about too: the steps are too large
    jumpy = train[:7] + [0.12, 0.04, 0.15, 0.05]
    found = diagnose(rows(jumpy, val, acc, lr=0.08), trial)
    assert found.label == "lr_too_high", found
    assert "of the chance loss" in found.reason


def test_a_train_loss_levelled_well_below_the_validation_loss_is_no_capacity_limit():
    """A regression with outliers under MSE: the train loss levels at 29% of the chance
    loss, the val loss at 62% (R² 0.38). Both flat, but the model fits its training set
    far better than it generalises: capacity to spare. The old rule read underfitting."""
    trial = {"stop_reason": "early_stopping", "initial_val_loss": 112286.0,
             "chance_val_loss": 20480.0, "config.epochs": 20}
    train = [102300, 83900, 15490, 7786, 6492, 6554, 6128, 6068, 5895, 5991, 5812, 5871,
             6026, 5909, 5896, 6000]
    val = [109900, 31480, 14800, 12810, 12990, 13240, 12630, 12770, 12550, 12980, 12460,
           12700, 12800, 12410, 12830, 12680]
    r2 = [1 - v / 20480 for v in val]
    found = diagnose(rows(train, val, lr=1e-5, r2=r2), trial, "val_mae", "min")
    assert found.label == "healthy", found
    # train and validation levelled together at the same level: a capacity limit
    found = diagnose(rows([v * 0.99 for v in val], val, lr=1e-5, r2=r2), trial,
                     "val_mae", "min")
    assert found.label == "underfitting", found


def test_a_first_epoch_blow_up_that_lands_at_chance_is_lr_too_high():
    """AdamW at lr 0.1, no norm: the first epoch's mean train loss 2.56 (above the
    untrained 2.31: the steps threw the weights), then flat at the chance loss for nine
    epochs. A rate too small never moves its train loss 10% in an epoch; the old rule
    read the flat tail as a smooth, slow curve (lr_too_low)."""
    trial = {**TEN, "initial_val_loss": 2.3106, "chance_val_loss": 2.3046,
             "chance_val_acc": 0.0836, "config.epochs": 10}
    train = [2.564, 2.312, 2.309, 2.311, 2.314, 2.311, 2.311, 2.310, 2.310, 2.310]
    val = [2.309, 2.304, 2.309, 2.308, 2.301, 2.314, 2.306, 2.304, 2.312, 2.304]
    acc = [0.100, 0.097, 0.084, 0.100, 0.097, 0.084, 0.084, 0.095, 0.084, 0.095]
    found = diagnose(rows(train, val, acc, lr=0.1), trial, "val_loss", "min")
    assert found.label == "lr_too_high", found
    assert "2.56 -> 2.31" in found.reason


def test_a_validation_loss_rising_above_its_start_while_the_train_loss_falls_is_overfitting():
    """A 2-unit net on 360 rows of 48 features: the train loss falls 0.676 -> 0.255 (37%
    of the chance loss) while the val loss rises from 0.679 to 1.58, above the untrained
    model's 0.716; val_acc never beats chance. It learnt its training set and nothing
    that generalises: overfitting, not a divergence (thrown weights lift the train loss
    too)."""
    trial = {"stop_reason": "completed", "initial_val_loss": 0.716, "initial_val_acc": 0.583,
             "chance_val_loss": 0.6816, "chance_val_acc": 0.583, "config.epochs": 30}
    train = [0.676, 0.656, 0.631, 0.597, 0.549, 0.513, 0.48, 0.44, 0.42, 0.405, 0.398, 0.375,
             0.351, 0.33, 0.312, 0.322] + line(0.31, 0.255, 14)
    val = [0.688, 0.679, 0.688, 0.696, 0.694, 0.77, 0.772, 0.78] + line(0.85, 1.58, 22)
    acc = [0.583, 0.583, 0.583, 0.583, 0.625, 0.653, 0.639] + [0.6 + 0.02 * (e % 3)
                                                               for e in range(23)]
    found = diagnose(rows(train, val, acc, lr=0.03), trial, "val_loss", "min")
    assert found.label == "overfitting", found


def test_a_train_loss_blown_up_while_the_rate_rises_is_lr_too_high():
    """One-cycle to a peak of 1 on a regression: the train loss blows up to 1.47e4 (62x its
    start) as the rate rises, then recovers to R² 0.80 as it anneals. A rising rate excuses
    a rise, not a blow-up; the old rule excused it and read the run healthy. A validation
    loss alone that spikes while the rate rises (batch-norm statistics lagging) is no
    blow-up of the steps."""
    trial = {"stop_reason": "completed", "initial_val_loss": 237.5, "chance_val_loss": 25.6,
             "config.epochs": 20}
    lr = [0.01, 0.51, 1.0] + line(0.99, 0.0076, 17)
    train = [109.4, 474.9, 14740, 260.2] + line(46.8, 5.1, 16)
    val = [97.8, 15040, 195.6, 127.5] + line(13.5, 5.12, 16)
    r2 = [1 - v / 25.6 for v in val]
    found = diagnose(rows(train, val, lr=lr, r2=r2), trial, "val_r2", "max")
    assert found.label == "lr_too_high", found
    assert "as the rate rose" in found.reason
    # a ResNet whose val loss alone spikes during the warmup epoch: healthy
    lr = [0.0043, 0.1] + line(0.097, 0.003, 8)
    train = [1.99, 0.66, 0.24, 0.144, 0.088, 0.040, 0.026, 0.014, 0.013, 0.0093]
    val = [2.04, 8.06, 0.51, 0.41, 0.152, 0.094, 0.064, 0.062, 0.059, 0.057]
    acc = [0.22, 0.21, 0.86, 0.88, 0.95, 0.98, 0.986, 0.98, 0.98, 0.983]
    found = diagnose(rows(train, val, acc, lr=lr), {**TEN, "config.epochs": 10})
    assert found.label == "healthy", found


def test_a_stall_once_the_schedule_cut_the_rate_tenfold_is_no_capacity_limit():
    """A ResNet at peak lr 1e-3 under cosine: a slow, steady fall to 87% of the chance
    loss that flattens as the rate falls 33x. Slowed that much, any steady fall looks
    levelled: the stall is the schedule's doing, not evidence of too little capacity."""
    lr = [4.3e-5, 1e-3, 9.7e-4, 8.8e-4, 7.5e-4, 5.9e-4, 4.1e-4, 2.5e-4, 1.2e-4, 3e-5]
    train = [2.35, 2.288, 2.219, 2.162, 2.114, 2.075, 2.046, 2.027, 2.017, 2.016]
    val = [2.351, 2.253, 2.184, 2.132, 2.091, 2.056, 2.035, 2.023, 2.018, 2.017]
    acc = [0.11, 0.23, 0.32, 0.38, 0.43, 0.44, 0.454, 0.457, 0.462, 0.46]
    trial = {**TEN, "initial_val_loss": 2.309, "chance_val_loss": 2.307,
             "chance_val_acc": 0.078, "config.epochs": 10}
    found = diagnose(rows(train, val, acc, lr=lr), trial)
    assert found.label == "lr_too_low", found
    assert "decayed" in found.reason


# -- issue #21, round 4: what heldout3 showed -------------------------------------------

EIGHT = {**TEN, "initial_val_loss": 2.35, "chance_val_loss": 2.314, "chance_val_acc": 0.067,
         "config.epochs": 8}


def test_a_plateau_takes_three_epochs_so_a_short_steady_fall_is_no_capacity_limit():
    """An 8-epoch CNN still falling 0.05-0.07 an epoch: its last third is two epochs,
    whose 3-epoch medians lie one epoch apart; judged over three it is still falling
    (19% of its fall), a run too short or too slow, not too small."""
    train = [2.29, 2.04, 1.90, 1.81, 1.68, 1.59, 1.53, 1.48]
    val = [2.20, 1.85, 1.85, 1.66, 1.45, 1.37, 1.30, 1.23]
    acc = [0.19, 0.27, 0.27, 0.38, 0.52, 0.55, 0.56, 0.59]
    found = diagnose(rows(train, val, acc, lr=0.03), EIGHT)
    assert found.label == "lr_too_low", found
    assert "last 3 epochs" in found.reason


def test_a_low_validation_loss_under_a_high_train_loss_is_no_capacity_limit():
    """Layer norm and dropout hold the train loss at 31% of the chance loss while the
    model itself (eval mode) is at 14% and val_acc 0.94: the capacity was there."""
    train = [2.26, 1.56, 1.14, 0.95, 0.875, 0.79, 0.75, 0.72]
    val = [2.06, 0.95, 0.68, 0.53, 0.52, 0.365, 0.321, 0.323]
    acc = [0.11, 0.72, 0.80, 0.88, 0.90, 0.94, 0.944, 0.939]
    found = diagnose(rows(train, val, acc, lr=0.03), EIGHT)
    assert found.label == "healthy", found


def test_a_last_gain_under_an_annealed_rate_at_a_low_loss_is_no_rate_too_low():
    """One-cycle: the rate falls 8x over the last two epochs and the val loss, already at
    13% of the chance loss, falls on to 5.5%: the annealing, not a rate too small. The
    same curve at a constant rate is still improving: too slow."""
    lr = [0.0012, 0.0125, 0.0287, 0.0289, 0.0238, 0.016, 0.0079, 0.00194]
    train = [2.28, 1.80, 1.13, 0.58, 0.31, 0.20, 0.151, 0.128]
    val = [2.30, 2.63, 1.29, 0.95, 0.289, 0.293, 0.155, 0.128]
    acc = [0.16, 0.30, 0.52, 0.65, 0.92, 0.92, 0.969, 0.969]
    trial = {**EIGHT, "initial_val_loss": 2.383, "chance_val_loss": 2.314}
    assert diagnose(rows(train, val, acc, lr=lr), trial, "val_loss", "min").label == "healthy"
    found = diagnose(rows(train, val, acc, lr=0.0289), trial, "val_loss", "min")
    assert found.label == "lr_too_low", found


def test_an_absolute_error_is_judged_on_the_squared_scale():
    """Two regressions of one quality (R² 0.81): the squared loss levels at 18% of its
    chance loss, the absolute (l1) one at 37% of its own, which squared is 14%: neither
    is a level far above what the data allows."""
    n = 30
    lr = [1e-3] * n
    curve = [0.11 + 0.30 * math.exp(-e / 2) for e in range(n)]
    val = [v + 0.007 for v in curve]
    r2 = [0.81] * n
    trial = {"stop_reason": "completed", "initial_val_loss": 0.506, "chance_val_loss": 0.315,
             "config.epochs": n, "config.loss": "l1"}
    history = rows(curve, val, lr=lr, r2=r2)
    assert diagnose(history, trial, "val_mae", "min").label == "healthy"
    found = diagnose(history, {**trial, "config.loss": "mse"}, "val_mae", "min")
    # as a squared loss, 35% is far above: levelled off at a rate that moves the weights
    assert found.label == "underfitting", found


def test_a_validation_loss_thrown_far_above_for_good_is_divergence():
    """A one-cycle peak of 0.29: the train loss falls (a mean over moving weights) while
    the validation loss of a model that never beat chance goes 3x, 40x, 13x the untrained
    model's and stays there until early stopping: thrown, not a rate too small."""
    lr = [0.012, 0.125, 0.287]
    train, val, acc = [2.02, 1.04, 0.72], [7.44, 92.2, 30.2], [0.095, 0.23, 0.20]
    trial = {**EIGHT, "stop_reason": "early_stopping", "initial_val_loss": 2.317,
             "chance_val_acc": 0.072}
    found = diagnose(rows(train, val, acc, lr=lr), trial, "val_loss", "min")
    assert found.label == "diverged", found
    assert "30.2" in found.reason


def test_the_way_down_to_the_class_frequencies_is_no_fast_move():
    """An 89/11 table at Adam 1e-3: the train loss falls 0.605 -> 0.47 in one epoch on
    its way from the untrained model's 0.686 to the chance loss 0.353 (an output bias
    learning the class frequencies), then levels: no steps too large."""
    trial = {"stop_reason": "completed", "initial_val_loss": 0.686, "initial_val_acc": 0.6,
             "chance_val_loss": 0.353, "chance_val_acc": 0.887, "config.epochs": 20}
    train = [0.605, 0.47, 0.389, 0.357, 0.343] + line(0.336, 0.313, 15)
    val = [0.526, 0.429, 0.381, 0.364, 0.356] + line(0.348, 0.328, 15)
    found = diagnose(rows(train, val, [0.887] * 20), trial, "val_loss", "min")
    assert found.label != "lr_too_high", found


def test_a_spike_above_the_start_out_of_a_lower_level_is_a_rate_too_high():
    """Two units at Adam 1: the val loss bounces around the chance loss (0.68, below the
    untrained model's 0.725) and once spikes 6% above the start: a rate too large to
    learn, not a loss thrown above where it began and kept there."""
    trial = {"stop_reason": "completed", "initial_val_loss": 0.725, "initial_val_acc": 0.58,
             "chance_val_loss": 0.682, "chance_val_acc": 0.583, "config.epochs": 12}
    train = [0.72, 0.73, 0.69, 0.70, 0.70, 0.68, 0.67, 0.68, 0.69, 0.71, 0.69, 0.686]
    val = [0.679, 0.767, 0.721, 0.70, 0.685, 0.679, 0.679, 0.679, 0.723, 0.697, 0.735, 0.697]
    acc = [0.583, 0.583, 0.583, 0.417, 0.583, 0.583, 0.583, 0.583, 0.417, 0.417, 0.583, 0.583]
    found = diagnose(rows(train, val, acc, lr=1.0), trial, "val_loss", "min")
    assert found.label == "lr_too_high", found
    # the same spike from a loss that stays at or above the start is a divergence
    up = [v + 0.05 for v in val]
    assert diagnose(rows(train, up, acc, lr=1.0), trial, "val_loss", "min").label == "diverged"


def test_an_early_stopped_run_still_falling_steadily_is_too_slow():
    """A deep tanh net under step decay, stopped early on val_acc noise while both losses
    still fall faster than ever (2.21 -> 2.03 in its last 5 epochs): the run had far to
    go, whatever the stopper read."""
    lr = [0.01] * 4 + [0.005] * 4 + [0.0025] * 4 + [0.00125] * 3
    train = [2.305, 2.299, 2.293, 2.286, 2.278, 2.271, 2.260, 2.244, 2.226, 2.207, 2.181,
             2.145, 2.105, 2.073, 2.034]
    val = [2.306, 2.300, 2.294, 2.285, 2.280, 2.271, 2.258, 2.238, 2.223, 2.201, 2.170,
           2.125, 2.095, 2.058, 2.016]
    acc = [0.11, 0.10, 0.14, 0.19, 0.13, 0.26, 0.26, 0.39, 0.40, 0.46, 0.48, 0.49, 0.47,
           0.48, 0.46]
    trial = {**TEN, "stop_reason": "early_stopping", "chance_val_acc": 0.075,
             "config.epochs": 16}
    found = diagnose(rows(train, val, acc, lr=lr), trial)
    assert found.label == "lr_too_low", found
    assert "still falling" in found.reason


# -- issue #21, round 5: what heldout4 showed -------------------------------------------

FIVE = {"stop_reason": "early_stopping", "initial_val_loss": 1.61, "initial_val_acc": 0.28,
        "chance_val_loss": 1.517, "chance_val_acc": 0.308, "config.epochs": 30}


def test_a_run_levelled_at_its_full_rate_then_decayed_is_healthy():
    """A 5-class table with correlated features at Adam 1e-3 under a plateau schedule: it
    levels at 52% of the chance loss by epoch 4, at its full rate, and the schedule cuts
    the rate because it levelled. Neither a stall the decay caused (lr_too_low) nor a
    capacity limit (the decay would flatten any curve): what the data allows."""
    lr = [1e-3] * 7 + [3e-4] * 3 + [9e-5] * 2
    train = [1.196, 0.926, 0.871, 0.867, 0.854, 0.856, 0.855, 0.840, 0.837, 0.838, 0.832,
             0.832]
    val = [0.938, 0.830, 0.798, 0.796, 0.785, 0.797, 0.792, 0.788, 0.789, 0.786, 0.786,
           0.785]
    acc = [0.667, 0.683, 0.713, 0.733, 0.713, 0.725, 0.708, 0.721, 0.721, 0.713, 0.713,
           0.713]
    found = diagnose(rows(train, val, acc, lr=lr), FIVE)
    assert found.label == "healthy", found
    # the same levels at a constant rate: levelled while the rate moves the weights
    assert diagnose(rows(train, val, acc, lr=1e-3), FIVE).label == "underfitting"


def test_winning_back_a_warm_restart_is_no_sign_of_a_rate_too_low():
    """SGD 0.3 under warm restarts: val_acc 0.96 by epoch 4, a dip to 0.81 when the rate
    jumps back up, then 0.98. The fall after the restart only wins back the dip (the train
    loss ends 0.90 against 0.99 before it): no new ground, so not "still falling"."""
    trial = {**TEN, "initial_val_loss": 2.3075, "chance_val_loss": 2.3059,
             "chance_val_acc": 0.086, "config.epochs": 9}
    lr = [0.0033, 0.3, 0.225, 0.075, 0.3, 0.28, 0.225, 0.15, 0.075]
    train = [2.319, 1.908, 1.226, 0.986, 1.348, 1.252, 1.045, 0.942, 0.902]
    val = [2.347, 0.874, 0.471, 0.345, 0.890, 0.621, 0.340, 0.300, 0.251]
    acc = [0.086, 0.774, 0.928, 0.964, 0.805, 0.850, 0.955, 0.975, 0.983]
    found = diagnose(rows(train, val, acc, lr=lr), trial)
    assert found.label == "healthy", found


def test_a_validation_loss_wandering_at_chance_under_a_flat_train_loss_is_lr_too_high():
    """An unnormalised ResNet at Adam 0.03: the train loss sits at the chance loss as
    flat as a tiny rate's, but the validation loss goes back and forth and gets nowhere
    (and val_acc jumps 0.08-0.14): steps too large to descend, not too small to move."""
    trial = {**TEN, "initial_val_loss": 2.325, "chance_val_loss": 2.307,
             "chance_val_acc": 0.089, "config.epochs": 9}
    train = [2.324, 2.307, 2.306, 2.305, 2.305, 2.305, 2.305, 2.305, 2.303]
    val = [2.304, 2.309, 2.307, 2.310, 2.305, 2.310, 2.308, 2.305, 2.302]
    acc = [0.084, 0.084, 0.084, 0.089, 0.131, 0.084, 0.142, 0.095, 0.117]
    found = diagnose(rows(train, val, acc, lr=0.03), trial)
    assert found.label == "lr_too_high", found
    assert "back and forth" in found.reason
    # a rate too small moves it one way, however slowly
    down = [2.304 - 0.002 * e for e in range(9)]
    assert diagnose(rows(train, down, acc, lr=1e-5), trial).label == "lr_too_low"


def test_learned_then_lost_most_of_it_to_the_end_is_lr_too_high():
    """SGD 0.3 with dropout under warm restarts: val_acc 0.94 by epoch 4, then the restart
    throws it to 0.25-0.49 for the rest of the run, the train loss back near ln 10. Short
    of chance, but it lost most of what it had learned, for good."""
    trial = {**TEN, "stop_reason": "early_stopping", "initial_val_loss": 2.307,
             "chance_val_loss": 2.306, "chance_val_acc": 0.086, "config.epochs": 9}
    lr = [0.0033, 0.3, 0.225, 0.075, 0.3, 0.28, 0.225, 0.15]
    train = [2.315, 2.035, 1.416, 1.109, 1.553, 2.066, 2.213, 2.022]
    val = [2.318, 1.079, 0.473, 0.377, 1.029, 1.989, 1.877, 1.618]
    acc = [0.089, 0.691, 0.905, 0.936, 0.749, 0.254, 0.323, 0.488]
    found = diagnose(rows(train, val, acc, lr=lr), trial)
    assert found.label == "lr_too_high", found
    assert "lost at least half" in found.reason


def test_a_first_epoch_blow_up_is_no_recovery_while_the_validation_loss_is_thrown_too():
    """Adam at lr 1: train loss 17 in epoch 1 (10x the untrained model's), val_acc 0.50
    above chance on five classes, but at a validation loss of 12, 7x the untrained
    model's: confidently wrong on the rest, still thrown."""
    train = [17.45, 14.51, 10.30, 10.02, 13.24, 11.95, 10.45, 11.22, 8.67, 5.94]
    val = [11.99, 17.25, 8.01, 13.25, 8.58, 11.67, 10.82, 13.79, 6.29, 6.30]
    acc = [0.496, 0.467, 0.446, 0.542, 0.567, 0.542, 0.492, 0.483, 0.608, 0.504]
    found = diagnose(rows(train, val, acc, lr=1.0), FIVE)
    assert found.label == "lr_too_high", found
    assert "17.4" in found.reason


def test_overfitting_on_many_classes_is_judged_on_the_scale_of_ln_2():
    """20 classes: the validation loss rises 0.77 -> 0.82-0.83 over the last epochs while
    the train loss halves. 2% of the chance loss ln 20, but 7% of ln 2: a model growing
    unsure between a few classes, not between all twenty."""
    trial = {**TEN, "initial_val_loss": 3.04, "chance_val_loss": 3.004,
             "chance_val_acc": 0.0375, "config.epochs": 14}
    train = [2.769, 1.483, 0.827, 0.608, 0.477, 0.373, 0.294, 0.240, 0.184, 0.142, 0.104,
             0.082, 0.061, 0.049]
    val = [2.071, 1.065, 0.869, 0.864, 0.775, 0.784, 0.768, 0.807, 0.782, 0.766, 0.796,
           0.820, 0.824, 0.833]
    acc = [0.58, 0.68, 0.76, 0.73, 0.79, 0.79, 0.80, 0.82, 0.81, 0.82, 0.81, 0.81, 0.83,
           0.82]
    found = diagnose(rows(train, val, acc, lr=0.1), trial, "val_loss", "min")
    assert found.label == "overfitting", found
    assert "of ln 2" in found.reason


def test_a_train_loss_still_falling_under_a_validation_loss_at_chance_is_too_slow():
    """AdamW at 1e-5 on 200 rows of 1000 features: the train loss falls steadily for all
    50 epochs (0.70 -> 0.32) while the validation loss never leaves the chance level. It
    has not generalised anything yet to fit beyond: a slow start, not a finished fit."""
    trial = {"stop_reason": "completed", "initial_val_loss": 0.700, "initial_val_acc": 0.44,
             "chance_val_loss": 0.698, "chance_val_acc": 0.42, "config.epochs": 50}
    train = line(0.702, 0.318, 50)
    val = line(0.700, 0.6865, 50)
    acc = [0.46] * 20 + [0.54] * 25 + [0.58] * 5
    found = diagnose(rows(train, val, acc, lr=1e-5), trial, "val_loss", "min")
    assert found.label == "lr_too_low", found
    assert "still falling" in found.reason


def test_an_objective_gaining_a_little_as_the_curve_levels_is_healthy():
    """A 128-unit table net at Adam 3e-3 (h5-spheres-capacity/05): val_acc 0.855 -> 0.88
    over its last 10 of 30 epochs, a new best at the end, but the val loss decelerates
    into a level (1% an epoch at the end: as many epochs again would take 29% off, the
    run had little left to go). Weak evidence of a rate too small reads healthy; the old
    rule read lr_too_low on the 2.5-point gain alone."""
    trial = {"stop_reason": "completed", "initial_val_loss": 1.10, "initial_val_acc": 0.34,
             "chance_val_loss": 1.103, "chance_val_acc": 0.315, "config.epochs": 30}
    val = [0.464 + 0.62 * 0.9 ** e for e in range(30)]
    train = [v - 0.1 * (1 - 0.9 ** e) for e, v in enumerate(val)]
    acc = line(0.40, 0.855, 20) + line(0.858, 0.881, 10)
    found = diagnose(rows(train, val, acc, lr=3e-3), trial)
    assert found.label == "healthy", found
    # the same gain at a lower loss falling at a steady pace (3% an epoch: 53% lower in
    # as many epochs again), as Adam 1e-4 on digits did
    val = [0.2 * 0.97 ** (e - 29) for e in range(30)]
    train = [v * 0.8 for v in val]
    found = diagnose(rows(train, val, acc, lr=3e-3), trial)
    assert found.label == "lr_too_low", found
    assert "as many epochs again" in found.reason


def test_a_validation_loss_wandering_at_chance_under_a_descending_train_loss_is_too_slow():
    """An MLP with batch norm at Adam 1e-5 (h5-hyperband-mlp-batchnorm/00): the val loss
    goes 2.34 -> 2.40 -> 2.25 (batch-norm statistics, 0.6% an epoch back and forth, more
    than it moves net), but the train loss descends one way, 2.45 -> 2.27, 1.3% an epoch:
    the weights move steadily downhill at a rate too small. The old rule read lr_too_high
    from the validation loss alone."""
    trial = {**TEN, "initial_val_loss": 2.305, "chance_val_loss": 2.310,
             "chance_val_acc": 0.078, "config.epochs": 8}
    train = [2.482, 2.448, 2.423, 2.388, 2.359, 2.332, 2.302, 2.270]
    val = [2.343, 2.395, 2.387, 2.361, 2.327, 2.299, 2.272, 2.247]
    acc = [0.056, 0.072, 0.084, 0.081, 0.089, 0.092, 0.109, 0.117]
    found = diagnose(rows(train, val, acc, lr=1e-5), trial)
    assert found.label == "lr_too_low", found
    assert "descends one way" in found.reason


@pytest.mark.parametrize("end, gap", [(2.302, 0.007), (2.14, 0.03)])
def test_a_train_loss_that_descended_to_chance_and_stopped_is_a_capacity_limit(end, gap):
    """A 4-deep net of two units at Adam 3e-3 (capacity/03): the train loss falls from the
    untrained model's 2.41 to the chance loss 2.309 in 10 epochs and stays there, flat,
    for 20 more, the val loss with it, val_acc at chance. A rate that moved the weights
    that far is not too small to move them further; nothing jumps: the model has no room
    to learn more. So too a 1-unit net levelled 7% below the chance loss, the val loss
    still within the chance band.
    The old rules read lr_too_low ("a smooth, slow curve")."""
    trial = {**TEN, "initial_val_loss": 2.405, "chance_val_loss": 2.309,
             "chance_val_acc": 0.075, "config.epochs": 30}
    train = [end + (2.407 - end) * 0.7 ** e for e in range(30)]
    val = [max(t, end) + gap for t in train]
    acc = [0.1] * 30
    found = diagnose(rows(train, val, acc, lr=3e-3), trial)
    assert found.label == "underfitting", found
    assert "stopped there" in found.reason
    # still creeping down at its end (a fifth of its fall in the last third): too slow
    creep = [t - 0.003 * e for e, t in enumerate(train)]
    val = [t + gap for t in creep]
    assert diagnose(rows(creep, val, acc, lr=3e-3), trial).label == "lr_too_low"


# -- issue #21, round 7: what heldout6 showed --------------------------------------------

CORR5 = {"stop_reason": "completed", "initial_val_loss": 1.622, "initial_val_acc": 0.2,
         "chance_val_loss": 1.558, "chance_val_acc": 0.317, "config.epochs": 20}
EXPONENTIAL = [1e-3 * 0.8 ** e for e in range(20)]


def test_a_run_that_levelled_faster_than_its_exponential_decay_is_healthy():
    """Adam 1e-3 on a hard 5-class table under exponential decay (h6-exponential-corr5/02,
    the sweep's best): the train loss falls 1.47 -> 0.873 in five epochs and then levels,
    the val loss at 57% of the chance loss, as the rate decays 69x. After the first cut
    the loss fell a fifth of what its pace at the full rate, scaled by the smaller rates,
    would bring: it had reached its floor, and the decay annealed it. The old rule read a
    stall that came with the decay, lr_too_low."""
    train = [1.47, 1.15, 0.969, 0.904, 0.873, 0.857, 0.848, 0.841, 0.837, 0.834, 0.832,
             0.83, 0.828, 0.827, 0.827, 0.826, 0.826, 0.825, 0.825, 0.825]
    val = [1.31, 1.06, 0.96, 0.928, 0.915, 0.905, 0.902, 0.901, 0.899, 0.898, 0.897,
           0.897, 0.896, 0.896, 0.896, 0.896, 0.896, 0.896, 0.896, 0.896]
    acc = [0.596, 0.637, 0.646, 0.65, 0.65, 0.654, 0.662, 0.658, 0.658, 0.662, 0.667,
           0.667, 0.662, 0.667, 0.667, 0.667, 0.662, 0.662, 0.662, 0.662]
    found = diagnose(rows(train, val, acc, lr=EXPONENTIAL), CORR5)
    assert found.label == "healthy", found
    # at 3e-4 (h6-exponential-corr5/01) the loss kept the pace the smaller rates allowed
    # and froze at 69% of the chance loss: the schedule stopped a run with far to go
    train = [1.52, 1.42, 1.34, 1.26, 1.2, 1.16, 1.13, 1.1, 1.09, 1.07, 1.06, 1.05, 1.05,
             1.04, 1.04, 1.04, 1.04, 1.03, 1.03, 1.03]
    val = [1.48, 1.4, 1.32, 1.26, 1.22, 1.18, 1.16, 1.14, 1.13, 1.11, 1.11, 1.1, 1.1, 1.09,
           1.09, 1.09, 1.08, 1.08, 1.08, 1.08]
    acc = [0.44, 0.58, 0.63, 0.65, 0.63, 0.646, 0.646, 0.642, 0.633, 0.637, 0.637, 0.637,
           0.642, 0.642, 0.642, 0.642, 0.646, 0.646, 0.646, 0.646]
    found = diagnose(rows(train, val, acc, lr=[v * 0.3 for v in EXPONENTIAL]), CORR5)
    assert found.label == "lr_too_low", found
    assert "as fast as the smaller rate allowed" in found.reason


def test_a_run_that_learned_most_before_its_cosine_ended_is_healthy():
    """A CNN with label smoothing at Adam 0.05 under cosine (h6-cnn-smoothing/04, the
    sweep's best): val 2.16 -> 0.637, 28% of the chance loss, val_acc 0.91, still gaining
    a little as the rate reaches zero. A run that learned most of what there is is
    annealed by its decay, not held back (the old rule: lr_too_low)."""
    lr = [0.05, 0.0488, 0.0452, 0.0397, 0.0327, 0.025, 0.0173, 0.0103, 0.00477, 0.00122]
    train = [2.29, 1.96, 1.58, 1.37, 1.23, 1.12, 1.04, 1.01, 0.993, 0.985]
    val = [2.16, 1.75, 1.57, 1.15, 0.94, 0.955, 0.672, 0.657, 0.647, 0.637]
    acc = [0.226, 0.384, 0.415, 0.641, 0.699, 0.719, 0.9, 0.889, 0.905, 0.914]
    trial = {**TEN, "initial_val_loss": 2.31, "chance_val_loss": 2.313, "config.epochs": 10}
    found = diagnose(rows(train, val, acc, lr=lr), trial)
    assert found.label == "healthy", found


def test_a_validation_loss_swinging_down_to_new_lows_at_the_end_is_no_rate_too_high():
    """A narrow deep MLP at Adam 3e-3 (h6-mlp-narrow-deep/02): the val loss jumps 0.162 ->
    0.212 and 0.181 -> 0.24 over its last third, the near-zero train loss with it, but its
    last epoch is its best and its level at the end below anything before: the run still
    descends through its swings, and a rate too large keeps it from getting anywhere. The
    old rule read lr_too_high."""
    train = [1.79, 0.729, 0.46, 0.325, 0.218, 0.153, 0.13, 0.101, 0.0837, 0.0884, 0.039,
             0.061, 0.0468, 0.0583, 0.0405]
    val = [1.01, 0.601, 0.425, 0.326, 0.294, 0.294, 0.177, 0.194, 0.185, 0.162, 0.212,
           0.181, 0.24, 0.146, 0.136]
    acc = [0.641, 0.763, 0.855, 0.883, 0.9, 0.922, 0.95, 0.947, 0.953, 0.961, 0.939, 0.95,
           0.944, 0.967, 0.972]
    trial = {**TEN, "initial_val_loss": 2.307, "chance_val_loss": 2.305, "config.epochs": 15}
    found = diagnose(rows(train, val, acc, lr=3e-3), trial)
    assert found.label == "healthy", found
    # the same swings ending above its best: thrown about, not descending
    worse = val[:-2] + [0.146, 0.17]
    assert diagnose(rows(train, worse, acc, lr=3e-3), trial).label == "lr_too_high"


# -- what the seventh held-out part showed (heldout7): alarms need strong evidence -----

def test_a_validation_loss_swinging_by_a_few_examples_near_zero_is_no_rate_too_high():
    """A dropout MLP on a binary table at Adam 1e-2 (h7-cancer-dropout-es/04, labelled
    healthy): over its last third the val loss goes 0.109 -> 0.123 -> 0.181 -> 0.142 ->
    0.119 -> 0.156, 23% an epoch back and forth in log terms, the dropout-jittered train
    loss with it, at val_acc 0.94-0.97. Large for a loss near zero, small for the task:
    0.03 an epoch, 4% of ln 2 (a few of 114 examples unsure and sure again). The old rule
    read lr_too_high."""
    trial = {"stop_reason": "early_stopping", "initial_val_loss": 0.7057,
             "initial_val_acc": 0.40, "chance_val_loss": 0.7074, "chance_val_acc": 0.544,
             "config.epochs": 30}
    train = [0.2945, 0.1395, 0.09395, 0.07459, 0.05844, 0.05925, 0.05455, 0.05573, 0.05141,
             0.04571, 0.07461, 0.08695, 0.05599, 0.04121]
    val = [0.28, 0.1341, 0.1532, 0.1346, 0.145, 0.1432, 0.132, 0.1393, 0.1085, 0.1231,
           0.1806, 0.1418, 0.1193, 0.1564]
    acc = [0.965, 0.965, 0.947, 0.947, 0.965, 0.956, 0.956, 0.956, 0.974, 0.965, 0.939,
           0.974, 0.965, 0.974]
    found = diagnose(rows(train, val, acc, lr=0.01), trial, "val_loss", "min")
    assert found.label == "healthy", found
    # swings three times as large (0.09 an epoch, 13% of ln 2): thrown about
    wide = val[:-5] + [0.12, 0.24, 0.12, 0.21, 0.15]
    found = diagnose(rows(train, wide, acc, lr=0.01), trial, "val_loss", "min")
    assert found.label == "lr_too_high", found
    assert "of ln 2" in found.reason


def test_a_regression_near_its_ceiling_still_gaining_a_little_is_healthy():
    """An MLP regression at Adam 3e-3 (h7-energy-mse-adam/03, labelled healthy): R² 0.85
    at the end, the val loss still falling 3% an epoch (as many epochs again: 56% lower),
    but from 16% of the chance loss: that pace would gain 0.087 of R², not a run held back.
    Its neighbour in the sweep (h7-energy-mse-adam/02) at the same pace from R² 0.70 would
    gain 0.15 of R²: too slow. The old rule read both lr_too_low."""
    trial = {"stop_reason": "completed", "initial_val_loss": 678.6,
             "chance_val_loss": 75.76, "config.epochs": 25, "config.loss": "mse"}
    train = [479.9, 84.31, 39.14, 32.35, 29.16, 25.92, 24.0, 22.0, 20.11, 18.69, 17.26,
             15.79, 14.43, 13.08, 11.94, 10.57, 9.983, 8.953, 7.968, 7.638, 7.62, 7.907,
             7.134, 6.884, 6.8]
    val = [134.2, 50.42, 42.75, 40.13, 36.94, 34.06, 30.84, 28.96, 26.96, 25.38, 23.46,
           21.87, 19.65, 18.95, 16.93, 15.32, 15.35, 13.34, 12.95, 13.04, 13.29, 11.99,
           11.82, 11.98, 11.33]
    r2 = [1 - v / 75.76 for v in val]
    found = diagnose(rows(train, val, lr=3e-3, r2=r2), trial, "val_loss", "min")
    assert found.label == "healthy", found
    train = [693, 594.7, 349.8, 91.56, 48.84, 38.55, 35.24, 32.57, 30.51, 28.73, 27.06,
             25.76, 24.56, 23.44, 22.57, 21.76, 21.26, 20.3, 19.97, 19.37, 18.64, 18.19,
             17.69, 17.29, 16.78]
    val = [626.9, 468, 176.5, 58.61, 50.2, 48.44, 45.51, 43.06, 40.82, 38.52, 37.16, 35.56,
           34.17, 32.59, 31.18, 30.26, 29.08, 28.12, 27.57, 26.46, 25.98, 25.08, 24.39,
           23.61, 23.1]
    r2 = [1 - v / 75.76 for v in val]
    found = diagnose(rows(train, val, lr=3e-3, r2=r2), trial, "val_loss", "min")
    assert found.label == "lr_too_low", found
    assert "of the chance loss" in found.reason


def test_a_train_loss_still_falling_near_zero_is_no_rate_too_low():
    """A binary task whose train loss falls steadily (a straight line) to 0.04, 6% of the
    chance loss, the val loss with it at val_acc 0.98: its last third brought a third of
    its fall, but as many epochs again could take no more than its level at the end off
    (0.062, the median of its last three epochs: 9% of the chance loss). The old rule
    read lr_too_low; the same line ending at 0.2 is too slow."""
    trial = {"stop_reason": "completed", "initial_val_loss": 0.70, "initial_val_acc": 0.5,
             "chance_val_loss": 0.693, "chance_val_acc": 0.5, "config.epochs": 30}
    acc = line(0.6, 0.98, 30)
    for end, label in ((0.04, "healthy"), (0.2, "lr_too_low")):
        train = line(0.69, end, 30)
        val = [v + 0.005 for v in train]
        found = diagnose(rows(train, val, acc, lr=1e-3), trial, "val_loss", "min")
        assert found.label == label, (end, found)


def test_a_short_planned_run_whose_last_epoch_reached_near_zero_is_healthy():
    """A run planned for 3 epochs on a binary task: val loss 0.69 -> 0.40 -> 0.15 -> 0.05,
    its last epoch 15% of its fall, but at that pace as many epochs again could take at
    most 0.05 off, 7% of ln 2. The old rule read lr_too_low."""
    trial = {"stop_reason": "completed", "initial_val_loss": 0.69, "initial_val_acc": 0.5,
             "chance_val_loss": 0.693, "chance_val_acc": 0.5, "config.epochs": 3}
    found = diagnose(rows([0.55, 0.25, 0.07], [0.40, 0.15, 0.05], [0.85, 0.95, 0.985]),
                     trial)
    assert found.label == "healthy", found
    # the same shape ending at 0.3: far from done
    found = diagnose(rows([0.62, 0.5, 0.32], [0.58, 0.45, 0.3], [0.7, 0.78, 0.86]), trial)
    assert found.label == "lr_too_low", found
