"""Column and file names of the result tables: the one place they are defined."""

from __future__ import annotations

RESULTS_DIR = "results"
TRIALS_FILE = "trials.parquet"
HISTORY_FILE = "history.parquet"
SWEEP_FILE = "sweep.json"

# Settings of the trainable appear as `config.<dotted key>`: the prefix keeps
# them apart from every other column.
CONFIG_PREFIX = "config."

TRIAL_ID = "trial_id"
STATUS = "status"
STOP_REASON = "stop_reason"
STOP_REASONS = ("completed", "scheduler", "early_stopping", "diverged", "error", "budget")

# The metrics the trainable reports every epoch (keys of its `tune.report`).
EPOCH_METRICS = ("train_loss", "val_loss", "val_acc")


def best_column(metric: str) -> str:
    return f"best_{metric}"


def trial_columns(metric: str) -> list[str]:
    """Fixed columns of trials.parquet; `config.*` columns come after `stop_reason`."""
    return [
        TRIAL_ID, STATUS, STOP_REASON,
        "effective_lr", "epochs", "best_epoch", best_column(metric),
        *EPOCH_METRICS, "diagnosis", "wall_s", "node_ip", "device", "threads",
        "error",
    ]


HISTORY_COLUMNS = [
    TRIAL_ID, "epoch", "lr", "batch_size", *EPOCH_METRICS, "epoch_s", "time_total_s",
]
HISTORY_KEY = (TRIAL_ID, "epoch")
