"""Rows of the result tables as pure functions of what Tune knows of a trial.

The live sink and the rebuild from an experiment folder both call these, so the
two give the same rows.
"""

from __future__ import annotations

import json
import re
from typing import Any

from orchestrator.diagnosis import diagnose
from orchestrator.results import schema
from orchestrator.spec.settings import GROUP_KEY
from orchestrator.states import StopReason, TrialStatus

# a terminal's escape sequences: CSI (colours: Ray writes `\x1b[36mray::...\x1b[39m` into
# a trial's error text) and OSC (titles, links), ended by BEL or ST
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
ERROR_CHARS = 4000  # the end of an error text is kept: the error itself, after the trace


def error_text(raw: str) -> str | None:
    """A trial's error as the `error` column holds it: Tune's error file without the
    terminal's colour codes (plain text in a table, an export, a report), its last
    ERROR_CHARS characters; None when empty."""
    return _ESCAPES.sub("", raw).strip()[-ERROR_CHARS:] or None


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_columns(config: dict) -> dict[str, Any]:
    """`config.<dotted key>` for every setting of the trainable (lists as JSON text,
    so that each column has one Parquet type)."""
    flat = flatten(config.get("train", {}))
    return {
        schema.CONFIG_PREFIX + key: json.dumps(value) if isinstance(value, list | tuple) else value
        for key, value in flat.items()
    }


def loop_metrics(result: dict) -> dict[str, float]:
    """The metrics a user's own loop reported beyond the shared trainable's (floats:
    a column of them has one type in every part and segment)."""
    names = [n for n in (result.get(schema.LOOP_METRICS) or "").split(",") if n]
    return {n: float(result[n]) for n in names
            if n in result and n not in schema.EPOCH_METRICS}


def history_row(trial_id: str, result: dict) -> dict[str, Any]:
    return {
        schema.TRIAL_ID: trial_id,
        "epoch": int(result["epoch"]),
        "lr": result.get("lr"),
        "batch_size": result.get("batch_size"),
        **{m: result.get(m) for m in schema.EPOCH_METRICS},
        **{s: result.get(s) for s in schema.SIGNAL_COLUMNS},
        "epoch_s": result.get("epoch_s"),
        "time_total_s": result.get("trial_time_s"),
        "exploited_from": result.get("exploited_from"),
        **loop_metrics(result),
    }


def best_of(history: list[dict], metric: str, mode: str) -> dict[str, Any]:
    """`best_<metric>` and `best_epoch` from the trial's own history rows (ties: the
    earliest epoch); nothing when no epoch has a value, so the reported ones stand.

    A trial's report carries its trainer's early-stopping state, which under PBT comes
    with the checkpoint of the trial it exploited: the tables state what each trial's own
    epochs reached."""
    scored = [r for r in history if r.get(metric) is not None and r[metric] == r[metric]]
    if not scored:
        return {}
    sign = 1 if mode == "max" else -1
    best = max(scored, key=lambda r: (sign * r[metric], -r["epoch"]))
    return {schema.best_column(metric): best[metric], "best_epoch": best["epoch"]}


def stop_reason(status: str, last: dict | None, budget_hit: bool) -> str | None:
    """Why the trial ended: its own word (completed, early_stopping, diverged) when it
    ended itself; else error, the time budget, or the scheduler's early termination;
    None while it may still go on (running, paused, pending)."""
    if status == TrialStatus.ERROR:
        return StopReason.ERROR
    reported = (last or {}).get("stop_reason")
    if reported:
        return reported
    if budget_hit:
        return StopReason.BUDGET
    return StopReason.SCHEDULER if status == TrialStatus.TERMINATED else None


def trial_row(
    trial_id: str,
    config: dict,
    status: str,
    last: dict | None,
    metric: str,
    error: str | None = None,
    budget_hit: bool = False,
    history: list[dict] | None = None,
    mode: str = "max",
) -> dict[str, Any]:
    """The trial's row. With its `history` rows, its best values come from them and,
    once it is no longer running, its diagnosis is made again with its end known."""
    last = last or {}
    best = schema.best_column(metric)
    row = {
        schema.TRIAL_ID: trial_id,
        schema.STATUS: status,
        schema.STOP_REASON: stop_reason(status, last, budget_hit),
        "effective_lr": last.get("effective_lr"),
        "batch_size_used": last.get("batch_size"),
        "oom_halvings": last.get("oom_halvings"),
        "epochs": last.get("epoch"),
        "best_epoch": last.get("best_epoch"),
        best: last.get(best),
        **{m: last.get(m) for m in schema.EPOCH_METRICS},
        **{c: last.get(c) for c in schema.BASELINE_COLUMNS},
        "diagnosis": last.get("diagnosis"),
        "diagnosis_reason": last.get("diagnosis_reason"),
        "wall_s": last.get("time_total_s"),
        "started_at": last.get("started_at"),
        "ended_at": last.get("ended_at"),
        "node_ip": last.get("node_ip"),
        "node_id": last.get("node_id"),
        "device": last.get("device"),
        "gpu_ids": last.get("gpu_ids"),
        "threads": last.get("threads"),
        "workers": int((config.get(GROUP_KEY) or {}).get("workers", 1)),
        "error": error,
        "warm_start_rerun": config.get("warm_start_rerun"),
        **loop_metrics(last),
    }
    row.update(config_columns(config))
    if history:
        row.update(best_of(history, metric, mode))
    if history and status != TrialStatus.RUNNING:
        # the trainer diagnoses as it goes; once the trial stopped, its end is known here
        # (the scheduler, the budget) and the curve is judged again, once
        row["diagnosis"], row["diagnosis_reason"] = diagnosis_of(
            history, row, metric, mode, own_loop="function" in (config.get("train") or {}))
    return row


def diagnosis_of(history: list[dict], row: dict, metric: str, mode: str,
                 own_loop: bool = False) -> tuple[str | None, str]:
    """The diagnosis of a trial; a user's loop is judged on what it reported (its train
    and validation losses), without the baselines only the shared trainable measures."""
    if own_loop and not all(any(_finite(r.get(k)) for r in history)
                            for k in ("train_loss", "val_loss")):
        return None, ("not judged: the loop reports no train_loss and val_loss (report "
                      "both to have its curves read)")
    found = diagnose(history, row, metric, mode)
    if own_loop:
        return found.label, (f"{found.reason} (your own loop: the untrained model's and "
                             "the chance level's losses are not known, so none is used)")
    return found.label, found.reason


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and value == value and abs(value) != float("inf")
