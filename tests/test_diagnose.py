"""Rules of the curve diagnosis on hand-made curves: each rule, and the traps the issue
named (tail noise, warm restarts, warmup, short ASHA-stopped curves, geometric falls)."""

import math

from orchestrator.diagnosis import LABELS, diagnose

TRIAL = {"stop_reason": "completed", "initial_val_loss": 2.3, "initial_val_acc": 0.1,
         "chance_val_loss": 2.3, "chance_val_acc": 0.1, "config.epochs": 20}


def rows(train, val=None, acc=None, lr=None):
    n = len(train)
    val = val or [t * 1.05 for t in train]
    acc = acc or [min(0.99, 1 - t / 2.5) for t in train]
    lr = lr or [0.1] * n
    return [{"epoch": e + 1, "train_loss": train[e], "val_loss": val[e], "val_acc": acc[e],
             "lr": lr[e]} for e in range(n)]


def label(history, **trial):
    return diagnose(history, {**TRIAL, **trial}).label


def geometric(n=20, floor=0.01):
    return [2.3 * 0.6 ** (e + 1) + floor for e in range(n)]


def test_fast_geometric_fall_is_healthy_not_lr_too_low():
    assert label(rows(geometric())) == "healthy"


def test_converged_tail_noise_is_not_a_rebound():
    train = geometric(20, floor=0.01)
    train[-4:] = [0.010, 0.015, 0.011, 0.016]  # +50% of its level, 0.3% of its fall
    val = [max(t, 0.1) for t in train]
    val[-4:] = [0.1, 0.104, 0.098, 0.103]  # a validation loss that has converged
    assert label(rows(train, val)) == "healthy"


def test_tuning_md_example_reads_lr_too_high():
    # docs/tuning.md: 3.2 -> 1.8 over 5 epochs, then 2.5 at epoch 6 (constant rate)
    found = diagnose(rows([3.2, 2.8, 2.4, 2.1, 1.8, 2.5]),
                     {**TRIAL, "initial_val_loss": 3.3, "chance_val_loss": 3.3})
    assert found.label == "lr_too_high"
    assert "1.8" in found.reason and "2.5" in found.reason


def test_lasting_rise_at_constant_rate_is_lr_too_high_but_not_under_a_warm_restart():
    train = geometric(12) + [0.3, 0.5, 0.6, 0.55, 0.6, 0.58, 0.6, 0.62]
    assert label(rows(train)) == "lr_too_high"
    restart = [0.1] * 12 + [0.1 * 3] * 8  # the rate jumps at epoch 13
    assert label(rows(train, lr=restart)) != "lr_too_high"


def test_a_rise_during_warmup_is_no_evidence():
    warmup = [0.01, 0.1] + [0.3] * 18
    train = [2.0, 2.35] + geometric(18)  # above the untrained loss while the rate rises
    assert label(rows(train, lr=warmup)) == "healthy"


def test_nan_and_blow_up():
    assert label(rows(geometric(5)[:4] + [math.nan])) == "diverged"
    stuck = rows([400.0, 90.0, 50.0, 13.0, 2.5] + [2.3] * 7, acc=[0.09] * 12)
    found = diagnose(stuck, TRIAL)
    assert found.label == "diverged" and "chance" in found.reason
    learned = rows([400.0, 90.0, 1.0, 0.5] + geometric(8), acc=[0.09, 0.2] + [0.9] * 10)
    assert label(learned) == "lr_too_high"


def test_a_non_finite_loss_that_recovers_is_missing_not_a_divergence():
    """A NaN train loss at epoch 1 and finite ones after it (what a Lightning callback
    reports for an epoch it did not average), or an inf validation loss mid-run: those
    epochs are read as missing, the reason says so, and the rest is judged as if they
    had not been reported."""
    history = rows(geometric())
    first = [{**history[0], "train_loss": math.nan}, *history[1:]]
    found = diagnose(first, TRIAL)
    assert found.label == diagnose(history[1:], TRIAL).label == "healthy", found
    assert "train loss nan at epoch 1 read as missing, not as a divergence" in found.reason
    middle = [*history[:7], {**history[7], "val_loss": math.inf}, *history[8:]]
    found = diagnose(middle, TRIAL)
    assert found.label == "healthy" and "val loss inf at epoch 8 read as missing" in \
        found.reason, found


def test_a_non_finite_loss_to_the_end_is_still_a_divergence():
    history = rows(geometric())
    stayed = [*history[:15], *({**r, "train_loss": math.nan} for r in history[15:])]
    found = diagnose(stayed, TRIAL)
    assert found.label == "diverged" and found.reason.startswith(
        "train loss is nan at epoch 16 and stayed so to epoch 20"), found
    # a NaN that recovered, then the run ends on one: diverged, and the first is missing
    ended = [{**history[0], "val_loss": math.nan}, *history[1:-1],
             {**history[-1], "val_loss": math.inf}]
    found = diagnose(ended, TRIAL)
    assert found.label == "diverged" and found.reason.startswith("val loss is inf at "
                                                                 "epoch 20 (")
    assert "val loss nan at epoch 1 read as missing" in found.reason


def test_a_first_epoch_spike_recovered_within_the_epoch_is_not_a_blow_up():
    train = [9.0] + geometric(19)
    val = [1.0] + [t * 1.05 for t in geometric(19)]  # the model after epoch 1 is fine
    assert label(rows(train, val)) == "healthy"


def test_unstable_validation_loss_is_lr_too_high():
    train = geometric(20, floor=0.1)
    val = [t * 1.05 for t in train[:12]] + [0.2, 0.6, 0.25, 0.55, 0.2, 0.5, 0.22, 0.6]
    assert label(rows(train, val)) == "lr_too_high"


def test_overfitting_by_the_objective_or_by_the_validation_loss():
    train = geometric(20, floor=0.001)
    val = [2.0, 1.0, 0.5, 0.3, 0.25] + [0.25 + 0.05 * e for e in range(15)]
    assert diagnose(rows(train, val), TRIAL, "val_loss", "min").label == "overfitting"
    # the same val loss (0.25 -> 0.95) with accuracy as the objective, and accuracy
    # holding: still overfitting (issue #21: accuracy on a small split moves in steps
    # and hides a validation loss that has nearly quadrupled)
    acc = [0.5, 0.8, 0.9, 0.95] + [0.96] * 16
    assert diagnose(rows(train, val, acc), TRIAL, "val_acc", "max").label == "overfitting"
    # a val loss that only wobbles around its level, accuracy holding: healthy
    flat = [2.0, 1.0, 0.5, 0.3, 0.25] + [0.25 + 0.01 * (e % 2) for e in range(15)]
    assert diagnose(rows(train, flat, acc), TRIAL, "val_acc", "max").label == "healthy"


def test_short_curves_cut_by_the_scheduler_are_too_short():
    for n in (2, 3, 6):
        found = diagnose(rows(geometric(n)), {**TRIAL, "stop_reason": "scheduler"})
        assert found.label == "too_short"
        assert f"after {n} of 20 epochs" in found.reason
    # a completed 4-epoch run that fell fast is judged, and fine
    assert label(rows(geometric(4)), **{"config.epochs": 4}) == "healthy"


def test_lr_too_low_barely_moves_or_still_falls():
    assert label(rows([2.3 - 0.002 * e for e in range(20)])) == "lr_too_low"
    slow = [2.3 - 0.09 * e for e in range(20)]  # a straight fall to 0.59, still going
    assert label(rows(slow)) == "lr_too_low"


def test_stall_after_the_rate_decayed_is_lr_too_low_else_underfitting():
    stall = [2.2, 1.9, 1.7, 1.6, 1.55] + [1.5] * 15
    decayed = [0.03 * 0.3 ** e for e in range(20)]
    assert label(rows(stall, lr=decayed)) == "lr_too_low"
    assert label(rows(stall, lr=[0.003] * 20)) == "underfitting"


def test_unknown_baselines_fall_back_to_the_curve():
    # sweeps from before the untrained model was evaluated
    found = diagnose(rows(geometric()), {"stop_reason": "completed"})
    assert found.label in LABELS and found.reason
    assert diagnose([], {}).label == "too_short"


def test_tables_of_an_old_sweep_are_diagnosed_again():
    import pandas as pd

    from orchestrator.results.tables import diagnosed

    history = pd.DataFrame(rows(geometric())).assign(trial_id="t1")
    trials = pd.DataFrame([{"trial_id": "t1", "stop_reason": "completed",
                            "diagnosis": "plateau"}])  # written before the baselines existed
    again = diagnosed(trials, history, "val_acc", "max")
    assert again.loc[0, "diagnosis"] == "healthy"
    assert "val_acc best" in again.loc[0, "diagnosis_reason"]


# -- any curve at all: the trainer diagnoses every epoch, so the rules must never raise ---

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_values = st.one_of(st.floats(0, 1e6), st.sampled_from([0.0, 1e-12, math.nan, math.inf]))


@settings(max_examples=400, deadline=None)
@given(n=st.integers(1, 12), data=st.data(),
       metric=st.sampled_from(["val_acc", "val_loss", "val_mae", "val_r2"]),
       baselines=st.fixed_dictionaries({
           "initial_val_loss": st.one_of(st.none(), _values),
           "chance_val_loss": st.one_of(st.none(), _values),
           "chance_val_acc": st.one_of(st.none(), st.floats(0, 1)),
           "initial_val_acc": st.one_of(st.none(), st.floats(0, 1)),
           "config.epochs": st.one_of(st.none(), st.integers(1, 30)),
           "stop_reason": st.sampled_from(["completed", "early_stopping", "scheduler",
                                           "diverged", "budget", None])}))
def test_any_curve_gets_a_label_and_a_reason_never_an_error(n, data, metric, baselines):
    column = st.lists(_values, min_size=n, max_size=n)
    history = [{"epoch": e + 1, "train_loss": t, "val_loss": v, "val_acc": a, "lr": lr,
                "val_mae": v, "val_r2": 1 - a}
               for e, (t, v, a, lr) in enumerate(zip(
                   data.draw(column), data.draw(column),
                   data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)),
                   data.draw(st.lists(st.floats(0, 10), min_size=n, max_size=n))))]
    mode = "max" if metric in ("val_acc", "val_r2") else "min"
    found = diagnose(history, baselines, metric, mode)
    assert found.label in LABELS and found.reason


def test_a_steeply_rising_curve_gains_nothing_ahead_and_raises_no_overflow():
    """What a rising loss would gain ahead: nothing (hypothesis found `math.exp`
    overflowing on a pace of a few hundred per epoch)."""
    from orchestrator.diagnosis.curves import read_curves

    history = [{"epoch": e, "train_loss": 1.0, "val_loss": 1.0, "val_acc": 0.5}
               for e in range(1, 9)]
    curves = read_curves(history, {"chance_val_loss": 2.0, "chance_val_acc": 0.5})
    assert curves.gain_ahead(curves.val, -400.0) == 0.0
    assert curves.gain_ahead(curves.val, 0.1) > 0
