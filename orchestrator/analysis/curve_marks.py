"""What both renderings of the curves (PNG and interactive) mark: how each trial ended,
as its colour, the epochs at which ASHA judged the trials, and the panels of the
training's own signals beside the loss."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from orchestrator.states import StopReason

STOP_COLOURS = {StopReason.COMPLETED: "#2b8a3e", StopReason.EARLY_STOPPING: "#1971c2",
                StopReason.SCHEDULER: "#e8590c", StopReason.DIVERGED: "#c92a2a",
                StopReason.ERROR: "#862e9c", StopReason.BUDGET: "#868e96"}
UNFINISHED_COLOUR = "#adb5bd"


def asha_rungs(spec: dict[str, Any]) -> list[int]:
    """The epochs at which ASHA judged trials (none for other schedulers)."""
    options = spec.get("scheduler", {})
    if options.get("name") != "asha":
        return []
    grace, factor = options.get("grace_period", 1), options.get("reduction_factor", 3)
    max_t = options.get("max_t") or spec["train"]["epochs"]
    rungs, k = [], 0
    while grace * factor**k < max_t:
        rungs.append(int(grace * factor**k))
        k += 1
    return rungs


# the training's signals beside the loss, a panel each: (column, axis title); every one
# on a log axis (they span orders of magnitude: that is what they show)
SIGNAL_PANELS = (("grad_norm", "gradient norm (mean)"), ("grad_norm_max", "gradient norm (max)"),
                 ("update_ratio", "update / weights"),
                 ("grad_norm_ratio", "first / last layer gradient"))
# the update ratio's usual healthy yardstick (../shared/TUNING.md), drawn as a line
UPDATE_YARDSTICK = 1e-3
SIGNALS_SKIPPED = ("no epoch recorded the training's signals (a sweep written before "
                   "them, or a loop of your own without trial.watch)")


def loss_column(history: pd.DataFrame) -> str | None:
    """The loss drawn beside the signals: the validation loss, else the training loss."""
    for column in ("val_loss", "train_loss"):
        if column in history and history[column].notna().any():
            return column
    return None


def signal_panels(history: pd.DataFrame) -> list[tuple[str, str]]:
    """The signals' panels that have something to draw on a log axis."""
    return [(column, title) for column, title in SIGNAL_PANELS
            if column in history and (on_log_axis(history[column]) > 0).any()]


def on_log_axis(values: pd.Series) -> pd.Series:
    """The values a log axis can show: positive and finite, the rest as gaps."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    return numbers.where(np.isfinite(numbers) & (numbers > 0))
