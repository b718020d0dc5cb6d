"""The training loop without Ray: exact resume, reproducibility, divergence, stop reasons."""

from __future__ import annotations

import pytest
import torch

from orchestrator.spec.settings import TrialConfig
from orchestrator.trainable.trainer import Trainer, trial_seed

SYNTHETIC = {"name": "synthetic", "n_samples": 400, "n_features": 10, "n_classes": 3}


def config(**train) -> TrialConfig:
    base = {
        "dataset": SYNTHETIC,
        "model": {"name": "mlp", "hidden": 32, "depth": 2, "dropout": 0.2, "norm": "batch"},
        "epochs": 6,
        "batch_size": 32,
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "schedule": {"name": "plateau", "warmup_epochs": 1, "patience": 1},
        "early_stopping": {"patience": None},
    }
    base.update(train)
    return TrialConfig.model_validate({"train": base, "seed": 7})


def run(trainer: Trainer) -> list[dict]:
    rows = []
    while not trainer.finished:
        rows.append(trainer.train_epoch())
    return rows


def comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("epoch_s", "trial_time_s")} for r in rows]


@pytest.mark.parametrize("k", [1, 3, 5])
def test_resumed_trial_matches_uninterrupted_bit_for_bit(tmp_path, k):
    straight = run(Trainer(config(), trial_index=3))

    first = Trainer(config(), trial_index=3)
    head = [first.train_epoch() for _ in range(k)]
    first.save(tmp_path)
    # perturb every RNG the restore must put back
    torch.manual_seed(999)
    import random

    import numpy as np
    random.seed(999)
    np.random.seed(999)
    resumed = Trainer(config(), trial_index=3)
    resumed.load(tmp_path)
    tail = run(resumed)
    assert tail[0]["restored_from_epoch"] == k
    for row in tail + head + straight:
        row.pop("restored_from_epoch")
    assert comparable(head + tail) == comparable(straight)  # exact equality, not approx


def test_same_seed_same_history_and_other_trial_differs():
    a, b = run(Trainer(config(), 0)), run(Trainer(config(), 0))
    c = run(Trainer(config(), 1))
    assert comparable(a) == comparable(b)
    assert [r["train_loss"] for r in a] != [r["train_loss"] for r in c]
    assert trial_seed(7, 0) != trial_seed(7, 1)


def test_divergence_stops_at_once():
    cfg = config(optimizer={"name": "sgd", "lr": 1e6, "momentum": 0.9},
                 schedule={"name": "constant"}, model={"name": "mlp", "hidden": 32}, epochs=20)
    rows = run(Trainer(cfg))
    assert rows[-1]["stop_reason"] == "diverged"
    assert rows[-1]["diagnosis"] == "diverged"
    assert len(rows) < 20


def test_early_stopping_ends_trial_and_keeps_best_epoch():
    cfg = config(epochs=60, early_stopping={"patience": 2, "min_delta": 0.0},
                 schedule={"name": "constant"},
                 optimizer={"name": "sgd", "lr": 0.5, "momentum": 0.9})
    rows = run(Trainer(cfg))
    last = rows[-1]
    assert last["stop_reason"] == "early_stopping"
    assert last["epoch"] - last["best_epoch"] == 2
    assert last["best_val_acc"] == max(r["val_acc"] for r in rows)


def test_completed_trial_reports_effective_lr_and_schedule():
    cfg = config(batch_size=128, batch_scaling={"rule": "sqrt", "reference_batch_size": 32},
                 schedule={"name": "step", "step_size": 2, "gamma": 0.5})
    rows = run(Trainer(cfg))
    assert rows[-1]["stop_reason"] == "completed"
    assert rows[0]["effective_lr"] == pytest.approx(0.1)  # 0.05 * sqrt(128 / 32)
    assert [r["lr"] for r in rows] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    assert all(r["batch_size"] == 128 for r in rows)


@pytest.mark.parametrize("optimizer", [
    {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True},
    {"name": "adam", "lr": 0.003},
    {"name": "adamw", "lr": 0.003, "weight_decay": 0.01, "grad_clip": 1.0},
])
def test_optimizers_learn(optimizer):
    rows = run(Trainer(config(optimizer=optimizer, schedule={"name": "constant"})))
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]


def test_bf16_autocast_runs_on_cpu():
    rows = run(Trainer(config(precision="bf16", epochs=2)))
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in rows)


def test_a_lost_checkpoint_falls_back_to_the_newest_whole_one_on_the_storage(tmp_path):
    """The fallback of a restore whose checkpoint Tune has deleted reads the trial's
    folder on the sweep's storage (a pyarrow filesystem): the newest checkpoint whose
    meta file was written (it is written last), not a half-written newer one."""
    import pyarrow.fs as pafs

    from orchestrator.trainable.trainer import META_FILE
    from orchestrator.trainable.tune_entry import newest_complete_checkpoint

    trial = tmp_path / "trial_00001"
    fs = pafs.LocalFileSystem()
    assert newest_complete_checkpoint(fs, str(trial)) is None  # no folder yet
    for epoch, whole in ((1, True), (9, True), (10, True), (11, False)):
        folder = trial / f"checkpoint_{epoch:06d}"
        folder.mkdir(parents=True)
        if whole:
            (folder / META_FILE).write_text("{}")
    (trial / "result.json").write_text("")
    found = newest_complete_checkpoint(fs, str(trial))
    assert found is not None and found.path == str(trial / "checkpoint_000010")
