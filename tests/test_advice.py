"""Sweep-level advice: each rule speaks only with its evidence (a pure function)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestrator.analysis.advice import advise, schedule_suggestions
from orchestrator.analysis.evidence import evidence


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
    assert advise(trials(n=5), spec()) == []  # too few trials to read patterns into
    # scores that follow no setting: no rule speaks (each guards against chance)
    frame = trials(best_epoch=10)
    frame["best_val_acc"] = np.linspace(0.5, 0.9, 12)[[3, 9, 0, 6, 11, 2, 7, 4, 10, 1, 8, 5]]
    assert advise(frame, spec()) == []


def test_the_search_space_speaks_through_the_evidence():
    frame = trials()
    high = frame["effective_lr"] > 0.1
    frame.loc[high, "stop_reason"] = "diverged"
    frame.loc[high, "best_val_acc"] = np.nan
    found = evidence(frame, spec())
    assert found.sentences() and set(found.sentences()) <= set(advise(frame, spec()))
    edge = f"{frame.loc[high, 'config.optimizer.lr'].min():.3g}"
    assert (f"{high.sum()} of {high.sum()} trials with optimizer.lr >= {edge} diverged: cut "
            f"optimizer.lr from {edge}") in advise(frame, spec())


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
            "epoch: consider train.epochs 40") in advise(frame, spec())
    (more,) = schedule_suggestions(frame, spec())
    assert (more.key, more.value) == ("train.epochs", 40)
    # epochs searched: no value to write, the sentence still says so
    searched = spec(search_space={**spec()["search_space"], "epochs": {"choice": [10, 20]}})
    (more,) = schedule_suggestions(frame, searched)
    assert more.value is None and more.sentence.endswith("consider more train.epochs")
