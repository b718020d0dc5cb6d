"""A searched choice (or grid) against its trials: a value whose trials all failed one
way, or all fell behind the others, dropped; a value added past the end the good trials
crowd (numbers only). The batch size is read together with the effective (scaled) rate:
a batch whose trials failed only where the rate did is kept, and an edge the rate may
explain widens the rate instead of the batch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from orchestrator.analysis.axes import config_values, name_of
from orchestrator.analysis.evidence.chance import tail_chance
from orchestrator.analysis.evidence.judged import (
    BATCH_KEY,
    EFFECTIVE,
    Claim,
    Judged,
    KeyEvidence,
    Scale,
    all_failed,
    families,
    num,
    percent,
    ways_text,
)
from orchestrator.analysis.evidence.thresholds import (
    DEAD_CHANCE,
    EDGE,
    EDGE_CHANCE,
    EDGE_SHARE,
    MIN_TRIALS,
    MIN_WEAK,
    NO_EFFECT_CHANCE,
)
from orchestrator.results import schema
from orchestrator.spec.model import searched_value_problem


def beyond(values: list, upward: bool) -> int | float | None:
    """The next value past the largest (or below the smallest) of numeric choices: the
    same ratio again when all are positive (64, 128 -> 256), else the same step; None
    when there is none (an integer that would fall below 1)."""
    ordered = sorted(values)
    end, inner = (ordered[-1], ordered[-2]) if upward else (ordered[0], ordered[1])
    new = end * (end / inner) if ordered[0] > 0 else end + (end - inner)
    if all(isinstance(v, int) for v in values):
        new = int(round(new))
        if ordered[0] > 0 and new < 1:
            return None
    else:
        new = float(f"{new:.3g}")
    if new in values or (new <= end if upward else new >= end):
        return None
    return new


def _rate_explains(rows: pd.DataFrame, good: pd.DataFrame) -> str | None:
    """Why a batch size's poor trials say nothing of the batch: every one of them ran at
    an effective (scaled) rate outside the span of the good trials' rates."""
    if EFFECTIVE not in rows:
        return None
    rates = pd.to_numeric(rows[EFFECTIVE], errors="coerce")
    good_rates = pd.to_numeric(good[EFFECTIVE], errors="coerce").dropna()
    if rates.isna().any() or good_rates.empty:
        return None
    low, high = float(good_rates.min()), float(good_rates.max())
    if rates.between(low, high).any():
        return None
    return (f"but all at effective_lr {num(rates.min())}-{num(rates.max())}, outside every "
            f"good trial's ({num(low)}-{num(high)}): the scaled rate, not the batch, "
            "explains it")


def _rate_carries(frame: pd.DataFrame, judged: Judged, upward: bool) -> str | None:
    """Under batch scaling the largest batch also runs the largest effective rates: when
    the best trial's effective rate lies in the outer tenth of those tried (log axis),
    the batch's edge may be the rate's."""
    if EFFECTIVE not in frame:
        return None
    rates = pd.to_numeric(frame[EFFECTIVE], errors="coerce").dropna()
    rates = rates[rates > 0]
    best = pd.to_numeric(pd.Series([judged.best.get(EFFECTIVE)]), errors="coerce").iloc[0]
    if len(rates) < MIN_TRIALS or pd.isna(best) or best <= 0 or rates.max() <= rates.min():
        return None
    share = Scale(float(rates.min()), float(rates.max()), log=True).share(float(best))
    if not (share >= 1 - EDGE if upward else share <= EDGE):
        return None
    return (f"and its effective_lr {num(best)} is in the {'top' if upward else 'bottom'} "
            f"tenth of those tried ({num(rates.min())}-{num(rates.max())}, log axis): the "
            "scaled rate may be what helped")


def _worse(scores: pd.Series, than: float, mode: str) -> pd.Series:
    """Worse than `than`; a trial with no score (it diverged) is worse than any."""
    return scores.isna() | ((scores < than) if mode == "max" else (scores > than))


def _dropped(key: str, name: str, rows: pd.DataFrame, frame: pd.DataFrame,
             judged: Judged) -> str | None:
    """Why the value `name` should go (its trials all failed one way, or all fell behind
    the others), or None."""
    if any(all_failed(frame, rows, family) for family in families(key)):
        return f"{len(rows)} of {len(rows)} trials with {key}={name} {ways_text(list(rows['way']))}"
    others = frame.loc[frame["value"] != name, "score"].dropna()
    if len(rows) < MIN_WEAK or rows["good"].any() or not len(others):
        return None
    worse = _worse(frame["score"], float(others.median()), judged.mode)
    if not worse[rows.index].all() or \
            tail_chance(len(frame), int(worse.sum()), len(rows), len(rows)) > DEAD_CHANCE:
        return None
    best = rows["score"].max() if judged.mode == "max" else rows["score"].min()
    return (f"all {len(rows)} trials with {key}={name} scored worse than the median of "
            f"the others ({judged.metric} {num(others.median())}; their best "
            f"{num(best) if pd.notna(best) else 'none'})")


def choice_evidence(key: str, kind: str, args: list, judged: Judged,
                    train: Mapping[str, Any] | None = None, scaled: bool = False
                    ) -> tuple[KeyEvidence, tuple[str, str] | None]:
    """What the trials say of one searched choice, and for the batch size under batch
    scaling (`scaled`) an edge to pass to the rate: (side, why), else None."""
    before = {kind: list(args)}
    frame = judged.frame.assign(value=config_values(
        judged.frame[schema.CONFIG_PREFIX + key]).map(name_of, na_action="ignore"))
    frame = frame[frame["value"].notna()]
    if len(frame) < MIN_TRIALS or len(args) < 2 or judged.best.name not in frame.index:
        return KeyEvidence(key, before, before), None
    good, claims, keep, dead, push = frame[frame["good"]], [], list(args), set(), None
    counts = good["value"].value_counts()
    where = f"the best {len(good)} trials used {key} " + ", ".join(
        f"{value} ({count})" for value, count in counts.items())
    for arg in args:
        name = name_of(arg)
        rows = frame[frame["value"] == name]
        said = _dropped(key, name, rows, frame, judged) if len(rows) else None
        if said is None:
            continue
        explained = _rate_explains(rows, good) if key == BATCH_KEY else None
        if explained:
            claims.append(Claim("kept", f"{said}, {explained}; keep {name}"))
            continue
        keep.remove(arg)
        dead |= set(rows.index)
        claims.append(Claim("prune", f"{said}: drop {name}"))
    numbers = list(args) if len(args) >= 2 and all(
        isinstance(a, int | float) and not isinstance(a, bool) for a in args) else None
    best_name = frame.loc[judged.best.name, "value"]
    for upward in (True, False) if numbers else ():
        end = max(numbers) if upward else min(numbers)
        there = int((good["value"] == name_of(end)).sum())
        tried = int((frame["value"] == name_of(end)).sum())
        if best_name != name_of(end) or there < math.ceil(EDGE_SHARE * len(good)) or \
                tail_chance(len(frame), tried, len(good), there) > EDGE_CHANCE:
            continue
        said = (f"the best trial ({judged.metric} {num(judged.best['score'])}) and {there} of "
                f"the best {len(good)} used the {'largest' if upward else 'smallest'} {key} "
                f"({name_of(end)})")
        carried = _rate_carries(frame, judged, upward) if key == BATCH_KEY and scaled else None
        if carried:
            claims.append(Claim("kept", f"{said}, {carried}; keep {key} as it is"))
            push = ("high" if upward else "low",
                    f"{said}, {carried}: widen the rate {'upward' if upward else 'downward'}")
            continue
        new = beyond(numbers, upward)
        problem = None if new is None or train is None else \
            searched_value_problem(train, key, new)
        if new is None or problem:
            claims.append(Claim("limit", f"{said}, but no value past it: "
                                         f"{problem or 'none left'}"))
            continue
        ascending = list(args) == sorted(args)
        keep = [*keep, new] if upward == ascending else [new, *keep]
        claims.append(Claim("edge", f"{said}: add {name_of(new)}"))
    if not claims:
        top, g = counts.index[0], int(counts.iloc[0])
        p = tail_chance(len(frame), int((frame["value"] == top).sum()), len(good), g)
        if p >= NO_EFFECT_CHANCE:
            claims.append(Claim("no_effect", (
                f"no measurable effect of {key} on {judged.metric}: {g} of the best "
                f"{len(good)} trials used {top}, as many or more by chance {percent(p)} of "
                "the time; keep it searched, or fix it")))
    return KeyEvidence(key, before, {kind: keep}, where, tuple(claims), frozenset(dead)), push
