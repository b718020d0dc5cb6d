"""Column and file names of the result tables: the one place they are defined."""

from __future__ import annotations

from orchestrator.spec.settings import (  # noqa: F401 (re-exported)
    SIGNALS,
    best_column,
)
from orchestrator.states import LOOP_METRICS, StopReason  # noqa: F401 (re-exported)

RESULTS_DIR = "results"
TRIALS_FILE = "trials.parquet"
HISTORY_FILE = "history.parquet"
# Rows the sink wrote since it last rewrote trials.parquet / history.parquet, one Parquet
# file per write: readers take the table's file plus these (a later row of a key wins).
TRIALS_PARTS_DIR = "trials.parts"
HISTORY_PARTS_DIR = "history.parts"
SWEEP_FILE = "sweep.json"
TABLES = ("trials", "history")
EXPORT_FORMATS = ("parquet", "csv", "jsonl")

# Settings of the trainable appear as `config.<dotted key>`: the prefix keeps
# them apart from every other column.
CONFIG_PREFIX = "config."

TRIAL_ID = "trial_id"
STATUS = "status"
STOP_REASON = "stop_reason"
STOP_REASONS = tuple(StopReason)

# The metrics the trainable reports every epoch (keys of its `tune.report`): a
# classification reports val_acc, a regression val_mae and val_r2 (the others null).
EPOCH_METRICS = ("train_loss", "val_loss", "val_acc", "val_mae", "val_r2")
# What the training itself showed each epoch (trainable/signals.py): grad_norm (the
# global gradient norm before clipping, mean over the epoch's measured steps),
# grad_norm_max, update_ratio (||dw|| / ||w|| of a step, median), grad_norm_ratio (first
# weight layer's gradient norm against the last's, median; nets of 3+ weight layers).
# Null where not measured: sweeps written before them, a user's loop without
# `trial.watch`, a shallow net's ratio.
SIGNAL_COLUMNS = SIGNALS
# What the diagnosis measures training against: the untrained model (one evaluation
# before the first step) and always predicting the training split's class frequencies.
BASELINE_COLUMNS = ("initial_val_loss", "initial_val_acc", "chance_val_loss", "chance_val_acc")


# -- columns and their declared Arrow types: the tables are a public interface ------
# Types come from here, never from the values, so that a sweep with no errors (an `error`
# column all null) or an unset setting writes the same schema as any other sweep, and
# the files of many sweeps can be read as one data set.

def system_trial_fields(metric: str) -> list[tuple[str, str]]:
    """(column, type name) of the fixed trial columns of trials.parquet, in order;
    `config.*` columns come after `stop_reason`."""
    return [
        (TRIAL_ID, "string"), (STATUS, "string"), (STOP_REASON, "string"),
        ("effective_lr", "float64"),
        # the batch the trial ended with, and how often memory halved it to get there
        ("batch_size_used", "int64"), ("oom_halvings", "int64"),
        ("epochs", "int64"), ("best_epoch", "int64"),
        (best_column(metric), "float64"),
        *[(m, "float64") for m in EPOCH_METRICS],
        *[(c, "float64") for c in BASELINE_COLUMNS],
        ("diagnosis", "string"), ("diagnosis_reason", "string"),
        ("wall_s", "float64"),
        # unix seconds: when the trial's last run started on its worker, and its last report
        ("started_at", "float64"), ("ended_at", "float64"),
        ("node_ip", "string"), ("node_id", "string"),
        # gpu_ids: the ids of the GPUs Ray assigned the trial, as JSON text (["0"])
        ("device", "string"), ("gpu_ids", "string"), ("threads", "int64"),
        # the trial's processes: 1, or the workers of its data-parallel group
        ("workers", "int64"),
        ("error", "string"),
        # true for a trial that ran an earlier sweep's best configuration again (a warm
        # start's `rerun_best`); false for the other trials of a warm start, else null
        ("warm_start_rerun", "bool_"),
    ]


HISTORY_FIELDS = [
    (TRIAL_ID, "string"), ("epoch", "int64"), ("lr", "float64"), ("batch_size", "int64"),
    *[(m, "float64") for m in EPOCH_METRICS],
    *[(s, "float64") for s in SIGNAL_COLUMNS],
    ("epoch_s", "float64"), ("time_total_s", "float64"),
    # PBT: "<trial_id>@<epoch>" whose checkpoint this epoch continued from, else null
    ("exploited_from", "string"),
]


def trial_columns(metric: str) -> list[str]:
    """Fixed columns of trials.parquet, in order."""
    return [name for name, _ in system_trial_fields(metric)]


HISTORY_COLUMNS = [name for name, _ in HISTORY_FIELDS]
HISTORY_KEY = (TRIAL_ID, "epoch")
TRIALS_KEY = (TRIAL_ID,)


def _arrow():
    import pyarrow as pa

    return pa


def _config_type(annotation) -> str:
    """The Arrow type name of one setting of the trainable (lists are JSON text)."""
    import types
    import typing

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _config_type(args[0])
    if origin is typing.Literal:
        kinds = {type(a) for a in typing.get_args(annotation)}
        return "string" if kinds == {str} else "float64"
    if annotation is bool:
        return "bool_"
    if annotation is int:
        return "int64"
    if annotation is float:
        return "float64"
    return "string"  # str, and tuples/lists written as JSON text


def config_fields() -> list[tuple[str, str]]:
    """(`config.<dotted key>`, type name) of every setting of the trainable, sorted:
    taken from the settings model, so every sweep has the same config columns."""
    from pydantic import BaseModel

    from orchestrator.spec.settings import BUILTIN, TrainConfig, tagged_members

    fields: list[tuple[str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            # a section that takes a user's factory: the built-in kind's columns (a
            # factory's own arguments become columns typed by their values)
            tagged = tagged_members(field.annotation)
            if tagged:
                fields.append((f"{CONFIG_PREFIX}{prefix}{name}.factory", "string"))
            annotation = tagged.get(BUILTIN, field.annotation)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name}.")
            else:
                fields.append((f"{CONFIG_PREFIX}{prefix}{name}", _config_type(annotation)))

    walk(TrainConfig, "")
    return sorted(fields)


def trials_schema(metric: str):
    """The Arrow schema of trials.parquet: fixed columns, then every config column."""
    pa = _arrow()
    fixed = system_trial_fields(metric)
    fields = [*fixed[:3], *config_fields(), *fixed[3:]]
    return pa.schema([(name, getattr(pa, kind)()) for name, kind in fields])


def history_schema():
    pa = _arrow()
    return pa.schema([(name, getattr(pa, kind)()) for name, kind in HISTORY_FIELDS])
