"""Sweep-level advice: a few plain sentences, each with the evidence that decided it,
as a pure function of the trials table and the resolved spec. No evidence, no advice."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from orchestrator.results import schema

MIN_TRIALS = 8  # below this, patterns in the best trials are mostly chance
TOP_SHARE = 0.2  # "the best trials": the top fifth, 3 to 5 of them
EDGE = 0.1  # a value within the outer tenth of its range sits at the edge
LATE = 4  # the best trial peaked at least this many grace periods in


def _top(trials: pd.DataFrame, best: str, mode: str) -> pd.DataFrame:
    scored = trials.dropna(subset=[best])
    k = min(5, max(3, round(len(scored) * TOP_SHARE)))
    return scored.sort_values(best, ascending=mode == "min").head(k)


def _divergence(trials: pd.DataFrame, spec: dict) -> str | None:
    if "optimizer.lr" not in spec.get("search_space", {}):
        return None
    diverged = trials[trials[schema.STOP_REASON] == "diverged"]
    others = trials[trials[schema.STOP_REASON] != "diverged"].dropna(subset=["effective_lr"])
    if diverged.empty or others.empty:
        return None
    threshold = float(diverged["effective_lr"].min())
    below = others[others["effective_lr"] < threshold]
    if len(below) < len(others) or below.empty:
        return None  # trials above the threshold trained fine: the rate alone is not it
    (kind, args), = spec["search_space"]["optimizer.lr"].items()
    if kind not in ("uniform", "loguniform"):
        return None
    high = float(below[f"{schema.CONFIG_PREFIX}optimizer.lr"].max())
    return (f"{len(diverged)} of {len(trials)} trials diverged, all with effective_lr >= "
            f"{threshold:.3g} and no other trial that high: narrow optimizer.lr to "
            f"[{args[0]:.3g}, {high:.3g}]")


def _numeric(values: pd.Series) -> pd.Series | None:
    parsed = values.map(lambda v: json.loads(v) if isinstance(v, str) and v[:1] in "[0123456789-"
                        else v)
    numbers = pd.to_numeric(parsed, errors="coerce")
    return None if numbers.isna().any() else numbers


def _edges(trials: pd.DataFrame, spec: dict, best: str) -> list[str]:
    top = _top(trials, best, spec["mode"])
    sentences = []
    for key, dist in spec.get("search_space", {}).items():
        (kind, args), = dist.items()
        column = f"{schema.CONFIG_PREFIX}{key}"
        values = _numeric(top[column]) if column in top else None
        if values is None:
            continue
        if kind in ("choice", "grid"):
            options = [a for a in args if isinstance(a, int | float) and not isinstance(a, bool)]
            if len(options) < 2 or len(options) != len(args):
                continue
            for edge, word, direction in ((max(options), "largest", "upward"),
                                          (min(options), "smallest", "downward")):
                if (values == edge).all():
                    sentences.append(f"the best {len(top)} trials all used the {word} {key} "
                                     f"({edge:g}): extend {key} {direction}")
            continue
        low, high = float(args[0]), float(args[1])
        if kind in ("randint", "lograndint"):  # inclusive integer ranges: their ends
            for edge, direction in ((high, "upward"), (low, "downward")):
                if (values == edge).all():
                    sentences.append(f"the best {len(top)} trials all used {key} {edge:g}, "
                                     f"an end of its range [{low:g}, {high:g}]: extend it "
                                     f"{direction}")
            continue
        log = kind.startswith("log") and low > 0
        points = values.astype(float).to_numpy()
        if log:
            points, low_s, high_s = np.log(points), math.log(low), math.log(high)
        else:
            low_s, high_s = low, high
        if high_s <= low_s:
            continue
        where = (points - low_s) / (high_s - low_s)
        if (where >= 1 - EDGE).all():
            sentences.append(f"the best {len(top)} trials all have {key} in the top tenth of "
                             f"its range [{low:g}, {high:g}]: extend it upward")
        elif (where <= EDGE).all():
            sentences.append(f"the best {len(top)} trials all have {key} in the bottom tenth "
                             f"of its range [{low:g}, {high:g}]: extend it downward")
    return sentences


def _grace(trials: pd.DataFrame, spec: dict, best: str) -> str | None:
    scheduler = spec.get("scheduler", {})
    if scheduler.get("name") != "asha":
        return None
    grace = scheduler.get("grace_period", 1)
    cut = trials[(trials[schema.STOP_REASON] == "scheduler") & (trials["epochs"] == grace)]
    top = _top(trials, best, spec["mode"])
    if top.empty or len(cut) < len(trials) / 2:
        return None
    peak = int(top["best_epoch"].iloc[0])
    if peak < LATE * grace:
        return None
    return (f"ASHA stopped {len(cut)} of {len(trials)} trials at epoch {grace} while the best "
            f"trial peaked at epoch {peak}: consider grace_period {2 * grace}")


def _still_improving(trials: pd.DataFrame) -> str | None:
    completed = trials[trials[schema.STOP_REASON] == "completed"]
    if len(completed) < 3:
        return None
    rising = completed[completed["best_epoch"] == completed["epochs"]]
    if len(rising) < len(completed) / 2:
        return None
    return (f"{len(rising)} of {len(completed)} trials that ran their full budget were still "
            "improving at their last epoch: consider more train.epochs")


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


def advise(trials: pd.DataFrame, spec: dict[str, Any]) -> list[str]:
    """Plain sentences about the search space and the schedule, each with its evidence."""
    memory = _out_of_memory(trials)
    if len(trials) < MIN_TRIALS:
        return memory
    best = schema.best_column(spec["metric"])
    found = [*memory, _divergence(trials, spec), *_edges(trials, spec, best),
             _grace(trials, spec, best), _still_improving(trials)]
    return [sentence for sentence in found if sentence]
