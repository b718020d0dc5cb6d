"""Sweep-level advice: each rule speaks only with its evidence (a pure function)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestrator.analysis.advice import advise


def spec(**changes) -> dict:
    base = {"metric": "val_acc", "mode": "max", "train": {"epochs": 20},
            "scheduler": {"name": "fifo"},
            "search_space": {"optimizer.lr": {"loguniform": [1e-4, 1.0]},
                             "batch_size": {"choice": [32, 64, 128]},
                             "model.depth": {"randint": [1, 4]}}}
    base.update(changes)
    return base


def trials(n: int = 12, seed: int = 0, **columns) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-4, 0, n)
    frame = pd.DataFrame({
        "trial_id": [f"t_{i:05d}" for i in range(n)], "status": "terminated",
        "stop_reason": "completed", "config.optimizer.lr": lr, "effective_lr": lr,
        "config.batch_size": rng.choice([32, 64, 128], n),
        "config.model.depth": rng.integers(1, 5, n), "best_val_acc": rng.uniform(0.5, 0.9, n),
        "best_epoch": rng.integers(5, 15, n), "epochs": 20,
    })
    for name, values in columns.items():
        frame[name] = values
    return frame


def test_no_evidence_no_advice():
    assert advise(trials(), spec()) == []
    assert advise(trials(n=5), spec()) == []  # too few trials to read patterns into


def test_divergence_narrows_the_rate_when_only_high_rates_diverged():
    frame = trials()
    high = frame["effective_lr"] > 0.3
    frame.loc[high, "stop_reason"] = "diverged"
    frame.loc[high, "best_val_acc"] = np.nan
    advice = advise(frame, spec())
    threshold = frame.loc[high, "effective_lr"].min()
    keep = frame.loc[~high, "config.optimizer.lr"].max()
    assert advice == [f"{high.sum()} of 12 trials diverged, all with effective_lr >= "
                      f"{threshold:.3g} and no other trial that high: narrow optimizer.lr to "
                      f"[0.0001, {keep:.3g}]"]
    # a trial above the threshold that trained fine: the rate alone is not the cause
    frame.loc[frame["effective_lr"].idxmax(), "stop_reason"] = "completed"
    assert not any("diverged" in a for a in advise(frame, spec()))


def test_the_best_trials_at_the_edge_of_a_range():
    frame = trials()
    best = frame["best_val_acc"].nlargest(3).index
    frame.loc[best, "config.batch_size"] = 128
    frame.loc[best, "config.optimizer.lr"] = [0.9, 0.95, 1.0]
    frame.loc[best, "config.model.depth"] = 1
    advice = advise(frame, spec())
    assert "the best 3 trials all used the largest batch_size (128): extend batch_size upward" \
        in advice
    assert ("the best 3 trials all have optimizer.lr in the top tenth of its range "
            "[0.0001, 1]: extend it upward") in advice
    assert ("the best 3 trials all used model.depth 1, an end of its range [1, 4]: extend it "
            "downward") in advice


def test_asha_cutting_at_the_grace_period_while_the_best_peaked_late():
    frame = trials(stop_reason="scheduler", epochs=2, best_epoch=2)
    best = frame["best_val_acc"].idxmax()
    frame.loc[best, ["stop_reason", "epochs", "best_epoch"]] = ["completed", 20, 16]
    asha = spec(scheduler={"name": "asha", "grace_period": 2})
    assert ("ASHA stopped 11 of 12 trials at epoch 2 while the best trial peaked at epoch 16: "
            "consider grace_period 4") in advise(frame, asha)
    frame.loc[best, "best_epoch"] = 5  # peaked early: ASHA judged at the right time
    assert not any("ASHA" in a for a in advise(frame, asha))


def test_trials_still_improving_at_their_last_epoch():
    frame = trials(best_epoch=20)
    assert ("12 of 12 trials that ran their full budget were still improving at their last "
            "epoch: consider more train.epochs") in advise(frame, spec())
