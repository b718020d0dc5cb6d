"""The diagnosis reads the training's own signals (issue #33; ../shared/TUNING.md,
"Reading the training itself"): real short trainings of the shared trainable on CPU,
each diagnosed as the trial diagnoses itself, and the same curves with the signals taken
out, which is what a sweep from before them (or a loop without `trial.watch`) shows.
Each case reads differently with the signals than from its curves alone: the signals
decide it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchestrator.diagnosis import diagnose
from orchestrator.spec.settings import SIGNALS, TrialConfig
from orchestrator.trainable.trainer import Trainer


def mlp(dataset: dict, hidden: int, depth: int, lr: float, epochs: int,
        activation: str = "relu", norm: str = "none", momentum: float = 0.9) -> TrialConfig:
    return TrialConfig.model_validate({"train": {
        "dataset": dataset, "epochs": epochs, "batch_size": 64,
        "model": {"name": "mlp", "hidden": hidden, "depth": depth, "activation": activation,
                  "norm": norm},
        "optimizer": {"name": "sgd", "lr": lr, "momentum": momentum},
        "early_stopping": {"patience": None}}})


def regression(path: str, lr: float, clip: float | None = None) -> TrialConfig:
    return TrialConfig.model_validate({
        "objective": {"metric": "val_loss", "mode": "min"},
        "train": {"task": "regression", "epochs": 15, "batch_size": 16,
                  "dataset": {"name": "table", "path": path, "label": "y"},
                  "model": {"name": "mlp", "hidden": 16, "depth": 1, "activation": "tanh"},
                  "optimizer": {"name": "sgd", "lr": lr, "momentum": 0.0, "grad_clip": clip},
                  "early_stopping": {"patience": None}}})


def diagnosed(config: TrialConfig) -> tuple[dict[str, str], str, Trainer]:
    """Train to the end; the trial's own diagnosis, and the label its curves alone give."""
    trainer = Trainer(config)
    while not trainer.finished:
        trainer.train_epoch()
    names = [*trainer.metric_names, "lr"]
    history = [{"epoch": i + 1, **dict(zip(names, values))}
               for i, values in enumerate(zip(*(trainer.curves[n] for n in names)))]
    assert all(name not in row for row in history for name in SIGNALS)
    trial = {"stop_reason": trainer.stop_reason, "config.epochs": trainer.train_cfg.epochs,
             **trainer.initial, **trainer.chance}
    objective = trainer.cfg.objective
    alone = diagnose(history, trial, objective.metric, objective.mode).label
    return trainer.diagnosis(), alone, trainer


@pytest.fixture(scope="module")
def line(tmp_path_factory) -> str:
    """A small regression table: 120 rows of y = x . w + noise (6 steps an epoch at
    batch 16); plain SGD learns it at 0.1."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6))
    y = x @ rng.normal(size=6) + rng.normal(0, 0.1, 120)
    path = tmp_path_factory.mktemp("line") / "line.csv"
    pd.DataFrame(np.column_stack([x, y]), columns=[*"abcdef", "y"]).to_csv(path, index=False)
    return str(path)


def test_a_deep_sigmoid_net_without_normalisation_reads_vanishing_gradients():
    """8 hidden sigmoid layers on the digits, no normalisation: the first layer's
    gradient ~1e-7 of the last's, the net at the chance loss. The curves alone blame the
    rate; the signals say depth, and the advice is structural."""
    found, alone, trainer = diagnosed(mlp({"name": "digits"}, 16, 8, 0.1, 3,
                                          activation="sigmoid"))
    assert found["diagnosis"] == "vanishing_gradients", found
    assert alone in ("lr_too_low", "lr_too_high")
    assert max(trainer.curves["grad_norm_ratio"]) < 1e-2
    assert "normalisation" in found["diagnosis_reason"]
    assert "residual connections" in found["diagnosis_reason"]
    assert "a shallower net" in found["diagnosis_reason"]


def test_a_rate_ten_times_too_high_without_clipping_reads_as_the_curve_shows(line):
    """SGD at 0.1 learns the line; at 1.0 (ten times) without clipping the gradient norm
    grows by orders over epochs until the loss overflows: exploding gradients (the curve
    alone: diverged). At 1000 the loss overflows within its first epoch, no growth across
    epochs to read: diverged. At 1.0 with clipping at 1 the loss stays finite and swings
    at steps of 0.3 of the weights: a rate too high (the curve alone: healthy)."""
    healthy, _, _ = diagnosed(regression(line, 0.1))
    assert healthy["diagnosis"] == "healthy", healthy
    found, alone, trainer = diagnosed(regression(line, 1.0))
    assert (found["diagnosis"], alone) == ("exploding_gradients", "diverged"), found
    assert trainer.stop_reason == "diverged"
    assert "clip the gradients and lower the rate" in found["diagnosis_reason"]
    at_once, _, trainer = diagnosed(regression(line, 1000.0))
    assert at_once["diagnosis"] == "diverged" and len(trainer.curves["val_loss"]) == 1
    clipped, alone, _ = diagnosed(regression(line, 1.0, clip=1.0))
    assert (clipped["diagnosis"], alone) == ("lr_too_high", "healthy"), clipped
    assert "update ratio" in clipped["diagnosis_reason"]


def test_a_small_rate_with_a_big_net_reads_lr_too_low_not_underfitting():
    """1024 units at SGD 1e-3 on a 3-class synthetic set level off at half the chance
    loss: from the curves alone a capacity limit. Its steps are 2-4e-4 of the weights,
    under the 1e-3 yardstick: the rate held it back (at 1e-2 the same net steps 1e-3
    and reaches a third of the chance loss)."""
    found, alone, trainer = diagnosed(mlp(
        {"name": "synthetic", "n_samples": 600, "n_classes": 3}, 1024, 2, 1e-3, 8))
    assert (found["diagnosis"], alone) == ("lr_too_low", "underfitting"), found
    assert max(trainer.curves["update_ratio"][-3:]) < 1e-3
    assert "steps too small" in found["diagnosis_reason"]
