"""The named states a sweep's tables, files and messages hold, and the run-time
protocol's keys: the lowest module of the package (it imports nothing of it).

Each state is a str-valued enum: a member compares equal to its value, and str(),
f-strings, JSON and Parquet give the bare value ("error", never "TrialStatus.ERROR"), so
the tables and files read as before and old sweeps compare equal."""

from __future__ import annotations

import sys
from enum import Enum

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10: what enum.StrEnum does
    class StrEnum(str, Enum):
        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return format(str(self.value), spec)


class TrialStatus(StrEnum):
    """A trial's `status` in trials.parquet."""

    PENDING = "pending"  # not started yet
    RUNNING = "running"
    PAUSED = "paused"  # started, neither ended nor running (a scheduler's pause, a stop)
    TERMINATED = "terminated"  # ended normally (its stop_reason says how)
    ERROR = "error"


class SweepStatus(StrEnum):
    """A sweep's `status` in sweep.json."""

    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"


class StopReason(StrEnum):
    """Why a trial stopped (`stop_reason` in trials.parquet)."""

    COMPLETED = "completed"  # ran its epochs
    SCHEDULER = "scheduler"  # the scheduler stopped it
    EARLY_STOPPING = "early_stopping"
    DIVERGED = "diverged"  # a loss that is not finite
    ERROR = "error"
    BUDGET = "budget"  # the sweep's time budget ran out


class Label(StrEnum):
    """A diagnosis's label (`diagnosis` in trials.parquet; orchestrator/diagnosis/)."""

    HEALTHY = "healthy"
    DIVERGED = "diverged"
    LR_TOO_HIGH = "lr_too_high"
    LR_TOO_LOW = "lr_too_low"
    OVERFITTING = "overfitting"
    UNDERFITTING = "underfitting"
    TOO_SHORT = "too_short"
    VANISHING_GRADIENTS = "vanishing_gradients"  # read from the training's own signals
    EXPLODING_GRADIENTS = "exploding_gradients"  # read from the training's own signals


# -- the run-time protocol between the trainable and the driver ------------------------
# a user's own loop names its metrics in every report under this key (not a column)
LOOP_METRICS = "loop_metrics"
# a trial whose checkpoint the storage refused (full, read-only) says why under this
# key in its report (not a column): the driver then stops the sweep as on Ctrl-C
STORAGE_ERROR = "storage_error"
# a trial that failed with an error of its data or code before its first epoch leaves
# this file in its trial folder: a retry fails at once with the same text, and runs
# none of the user's code again (trainable/not_retried.py)
NOT_RETRIED_FILE = ".not_retried"
