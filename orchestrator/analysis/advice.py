"""Sweep-level advice: a few plain sentences, each with the evidence that decided it, as a
pure function of the trials table (the history, where a trial's curves are read) and the
resolved spec. No evidence, no advice.

The search space speaks through the evidence across trials (`analysis.evidence`: dead
regions, edges, narrowing, choices to drop); the schedule through the two rules here,
each also a setting that `sweep refine` writes into the next spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from orchestrator.analysis.evidence import Evidence, evidence
from orchestrator.analysis.evidence.thresholds import MIN_TRIALS
from orchestrator.results import schema
from orchestrator.states import StopReason

LATE = 4  # the best trial peaked at least this many grace periods in
EPOCHS_FACTOR = 2  # more epochs, when most full-budget trials were still improving


@dataclass(frozen=True)
class Suggestion:
    """A schedule setting to change: its dotted spec key, the value, and why."""
    key: str  # scheduler.grace_period, train.epochs
    value: int | None  # None: no value to write (the epochs are searched)
    sentence: str


def _best(trials: pd.DataFrame, spec: dict) -> pd.Series | None:
    best = schema.best_column(spec["metric"])
    scored = trials.dropna(subset=[best]) if best in trials else trials.iloc[:0]
    if scored.empty:
        return None
    return scored.sort_values(best, ascending=spec["mode"] == "min", kind="stable").iloc[0]


def _grace(trials: pd.DataFrame, spec: dict) -> Suggestion | None:
    scheduler = spec.get("scheduler") or {}
    if scheduler.get("name") != "asha":
        return None
    grace = scheduler.get("grace_period", 1)
    cut = trials[(trials[schema.STOP_REASON] == StopReason.SCHEDULER) & (trials["epochs"] == grace)]
    best = _best(trials, spec)
    if best is None or len(cut) < len(trials) / 2:
        return None
    peak = int(best["best_epoch"])
    if peak < LATE * grace:
        return None
    return Suggestion("scheduler.grace_period", 2 * grace, (
        f"ASHA stopped {len(cut)} of {len(trials)} trials at epoch {grace} while the best "
        f"trial peaked at epoch {peak}: consider grace_period {2 * grace}"))


def _still_improving(trials: pd.DataFrame, spec: dict) -> Suggestion | None:
    completed = trials[trials[schema.STOP_REASON] == StopReason.COMPLETED]
    if len(completed) < 3:
        return None
    rising = completed[completed["best_epoch"] == completed["epochs"]]
    if len(rising) < len(completed) / 2:
        return None
    epochs = (spec.get("train") or {}).get("epochs")
    searched = "epochs" in (spec.get("search_space") or {})
    value = EPOCHS_FACTOR * epochs if isinstance(epochs, int) and not searched else None
    return Suggestion("train.epochs", value, (
        f"{len(rising)} of {len(completed)} trials that ran their full budget were still "
        f"improving at their last epoch: consider "
        + (f"train.epochs {value}" if value else "more train.epochs")))


def schedule_suggestions(trials: pd.DataFrame, spec: dict[str, Any]) -> list[Suggestion]:
    """The schedule's settings the trials ask to change (none under MIN_TRIALS)."""
    if len(trials) < MIN_TRIALS:
        return []
    return [s for s in (_grace(trials, spec), _still_improving(trials, spec)) if s]


def _out_of_memory(trials: pd.DataFrame) -> list[str]:
    """Trials whose batch memory halved (the trainer's out-of-memory halving), by the batch
    they asked for and the one they ran at: their results are those of the latter. A
    record, not a pattern: it needs no minimum of trials."""
    asked = f"{schema.CONFIG_PREFIX}batch_size"
    if not {"oom_halvings", "batch_size_used", asked} <= set(trials.columns):
        return []
    halved = trials[pd.to_numeric(trials["oom_halvings"], errors="coerce").fillna(0) > 0]
    sentences = []
    for (batch, used), group in halved.groupby([asked, "batch_size_used"], sort=True):
        count = f"{len(group)} trial" + ("s" if len(group) != 1 else "")
        sentences.append(f"{count} ran out of memory at batch {int(batch)} and ran at "
                         f"{int(used)} with the rate scaled: their results are batch "
                         f"{int(used)}'s (batch_size_used, effective_lr)")
    return sentences


def advise(trials: pd.DataFrame, spec: dict[str, Any], history: pd.DataFrame | None = None,
           found: Evidence | None = None) -> list[str]:
    """Plain sentences about the search space and the schedule, each with its evidence.
    `found`: the evidence when the caller has it already."""
    memory = _out_of_memory(trials)
    if len(trials) < MIN_TRIALS:
        return memory
    found = found or evidence(trials, spec, history)
    return [*memory, *found.sentences(),
            *(s.sentence for s in schedule_suggestions(trials, spec))]
