"""Hand-built sweeps for the evidence and refine tests (the fast lane): made-up trials
with curves the diagnosis reads as intended (a model that learns and levels off, one
that stays at the chance level, one that diverges), their trials and history tables,
and a sweep folder holding them as a real sweep would."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from orchestrator.results import schema
from orchestrator.spec.model import spec_from_mapping

CHANCE_ACC, CHANCE_LOSS = 0.1, math.log(10)  # ten classes
EPOCHS = 8


@dataclass
class Made:
    """One made-up trial: its settings, how it went, its best val_acc (good trials)."""
    config: dict[str, Any]
    outcome: str = "good"  # good | chance | diverged
    score: float = 0.9
    stop_reason: str = "completed"
    epochs: int = EPOCHS
    effective_lr: float | None = None
    speed: float = 1.5  # how fast a good trial learns: its val_acc beats chance at epoch 1
    extra: dict[str, Any] = field(default_factory=dict)  # more trial columns


def _curve(made: Made) -> list[dict[str, float]]:
    rows = []
    for e in range(1, made.epochs + 1):
        if made.outcome == "good":  # learns in the first epochs, then levels off
            reached = 1 - math.exp(-made.speed * e)
            # past epoch 5 it gives back a hair: its best epoch is not its last
            acc = CHANCE_ACC + (made.score - CHANCE_ACC) * reached - 0.001 * max(0, e - 5)
            val = CHANCE_LOSS - (CHANCE_LOSS - 0.3) * reached
            train = val * 0.95
        elif made.outcome == "chance":  # a loss at the chance level that barely moves
            acc, val, train = CHANCE_ACC + 0.01 * (e % 2), CHANCE_LOSS + 0.001 * e, \
                CHANCE_LOSS + 0.002 * (made.epochs - e)
        else:  # diverged: the loss blows up, then is not finite
            acc, val = CHANCE_ACC, CHANCE_LOSS * 3 ** e
            train = math.nan if e == made.epochs else CHANCE_LOSS * 4 ** e
        rows.append({"epoch": e, "lr": made.config.get("optimizer.lr", 0.05),
                     "batch_size": made.config.get("batch_size", 64), "train_loss": train,
                     "val_loss": val, "val_acc": acc, "val_mae": math.nan,
                     "val_r2": math.nan, "epoch_s": 0.1, "time_total_s": 0.1 * e,
                     "exploited_from": None})
    return rows


def tables(made: list[Made]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trials, history) of the made-up trials."""
    trials, history = [], []
    for i, m in enumerate(made):
        trial_id = f"made_{i:05d}"
        curve = _curve(m)
        stop = "diverged" if m.outcome == "diverged" else m.stop_reason
        accs = [r["val_acc"] for r in curve]
        best_i = max(range(len(accs)), key=accs.__getitem__)
        lr = m.config.get("optimizer.lr", 0.05)
        trials.append({
            schema.TRIAL_ID: trial_id, schema.STATUS: "terminated", schema.STOP_REASON: stop,
            **{f"{schema.CONFIG_PREFIX}{k}": v for k, v in m.config.items()},
            "config.epochs": EPOCHS,
            "effective_lr": m.effective_lr if m.effective_lr is not None else lr,
            "epochs": m.epochs, "best_epoch": curve[best_i]["epoch"],
            "best_val_acc": math.nan if m.outcome == "diverged" else accs[best_i],
            "train_loss": curve[-1]["train_loss"], "val_loss": curve[-1]["val_loss"],
            "val_acc": accs[-1], "val_mae": math.nan, "val_r2": math.nan,
            "initial_val_loss": CHANCE_LOSS, "initial_val_acc": CHANCE_ACC,
            "chance_val_loss": CHANCE_LOSS, "chance_val_acc": CHANCE_ACC,
            "diagnosis": None, "diagnosis_reason": None, "wall_s": 1.0, **m.extra})
        history += [{schema.TRIAL_ID: trial_id, **row} for row in curve]
    return pd.DataFrame(trials), pd.DataFrame(history)


def write_sweep(storage: Path, spec: dict[str, Any], made: list[Made],
                spec_dir: Path | None = None) -> Path:
    """A sweep folder `<storage>/<name>` as a finished sweep leaves it: sweep.json with
    the resolved spec (read as if from a file in `spec_dir`), trials.parquet and
    history.parquet."""
    resolved = spec_from_mapping(spec, base_dir=spec_dir).resolved()
    results = storage / resolved["name"] / schema.RESULTS_DIR
    results.mkdir(parents=True)
    trials, history = tables(made)
    trials.to_parquet(results / schema.TRIALS_FILE)
    history.to_parquet(results / schema.HISTORY_FILE)
    (results / schema.SWEEP_FILE).write_text(json.dumps(
        {"spec": resolved, "status": "finished", "started_at": "2026-01-01T00:00:00+00:00"}))
    return storage / resolved["name"]


def log_spaced(low: float, high: float, n: int) -> list[float]:
    return [float(f"{low * (high / low) ** (i / (n - 1)):.4g}") for i in range(n)]
