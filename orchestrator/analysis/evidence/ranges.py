"""A searched range (uniform, loguniform, quniform, randint, lograndint) against its
trials, on its own axis (log for a log-distributed key): its dead ends cut, narrowed
around the good trials when they lie closer together than chance would put them, widened
past the edge they crowd; log or linear as it was."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from orchestrator.analysis.axes import INTEGER_KINDS, LOG_KINDS, config_values
from orchestrator.analysis.evidence.chance import span_chance, tail_chance
from orchestrator.analysis.evidence.judged import (
    Claim,
    Judged,
    KeyEvidence,
    Scale,
    dead_end,
    num,
    percent,
    ways_text,
)
from orchestrator.analysis.evidence.thresholds import (
    EDGE,
    EDGE_CHANCE,
    EDGE_SHARE,
    MIN_PAD,
    MIN_TRIALS,
    MIN_WIDEN,
    NARROW_CHANCE,
    NO_EFFECT_CHANCE,
    PAD,
    WIDEN,
)
from orchestrator.results import schema
from orchestrator.spec.model import searched_value_problem


def values_of(judged: Judged, key: str) -> pd.DataFrame:
    """The judged trials that hold a number for `key`, as `value`."""
    frame = judged.frame.assign(value=pd.to_numeric(
        config_values(judged.frame[schema.CONFIG_PREFIX + key]), errors="coerce"))
    return frame[frame["value"].notna()]


def range_evidence(key: str, kind: str, args: list, judged: Judged,
                   train: Mapping[str, Any] | None = None,
                   pushed: tuple[str, str] | None = None) -> KeyEvidence:
    """What the trials say of one searched range. `train`: the spec's trainable settings,
    to keep a moved bound one the trainable takes; `pushed`: (side, why) to widen it
    past that side even so (a batch-size edge that its effective rate explains)."""
    before = {kind: list(args)}
    frame = values_of(judged, key)
    scale = Scale(float(args[0]), float(args[1]), kind in LOG_KINDS)
    if scale.width <= 0 or len(frame) < MIN_TRIALS:
        return KeyEvidence(key, before, before)
    claims: list[Claim] = []
    low, high = scale(scale.low), scale(scale.high)
    step = 1 if kind in INTEGER_KINDS else 0  # past an integer: the next one
    ends, dead = {}, set()
    for low_end, sign, cut in ((True, "<=", "up to"), (False, ">=", "from")):
        found = dead_end(key, frame, low_end)
        if found:
            ends[low_end], rows = found
            dead |= set(rows.index)
            claims.append(Claim("dead", (
                f"{len(rows)} of {len(rows)} trials with {key} {sign} {num(ends[low_end])} "
                f"{ways_text(list(rows['way']))}: cut {key} {cut} {num(ends[low_end])}")))
    if True in ends:
        low = max(low, scale(ends[True] + step))
    if False in ends:
        high = min(high, scale(ends[False] - step))

    good, n = frame[frame["good"]], len(frame)
    if good.empty or judged.best.name not in frame.index:  # no good trial holds a value
        return KeyEvidence(key, before, before)
    axis = " (log axis)" if scale.log else ""
    span = f"[{num(scale.low)}, {num(scale.high)}]{axis}"
    g_low, g_high = float(good["value"].min()), float(good["value"].max())
    mean = sum(scale.share(v) for v in good["value"]) / len(good)
    part = "lower third" if mean < 1 / 3 else "upper third" if mean > 2 / 3 else "middle"
    where = (f"the best {len(good)} trials have {key} {num(g_low)}-{num(g_high)}, in the "
             f"{part} of {span}")
    side = _edge(key, frame, judged, scale, ends, claims, span)
    inside = int(frame["value"].between(g_low, g_high).sum())
    p = span_chance(n, len(good), inside)
    if p <= NARROW_CHANCE:
        pad = max(PAD * (scale(g_high) - scale(g_low)), MIN_PAD * scale.width)
        low, high = max(low, scale(g_low) - pad), min(high, scale(g_high) + pad)
        claims.append(Claim("narrow", (
            f"the best {len(good)} trials lie within {key} [{num(g_low)}, {num(g_high)}], a "
            f"stretch that holds {inside} of {n} trials (a {percent(p)} chance if {key} had "
            "no effect): narrow it around them")))
    elif not claims and p >= NO_EFFECT_CHANCE:
        claims.append(Claim("no_effect", (
            f"no measurable effect of {key} on {judged.metric}: the best {len(good)} trials "
            f"spread over {inside} of {n} trials' values (as close by chance {percent(p)} "
            "of the time); keep it searched, or fix it")))
    if pushed and side is None and (pushed[0] == "low") not in ends:
        side = pushed[0]
        claims.append(Claim("edge", pushed[1]))
    # past an edge: by half of what is left of the range, a tenth of the old one at least
    if side == "high":
        high = scale(scale.high) + max(WIDEN * (scale(scale.high) - low), MIN_WIDEN * scale.width)
    elif side == "low":
        floor = 0.0 if not scale.log and scale.low >= 0 else -math.inf  # keep the sign
        low = max(scale(scale.low) - max(WIDEN * (high - scale(scale.low)),
                                         MIN_WIDEN * scale.width), floor)
    after = _range_args(kind, args, scale.back(low), scale.back(high))
    after, problem = _taken(key, kind, args, after, train)
    if problem:  # only a bound past the old range can be refused: the edge's
        claims = [Claim("limit", f"{c.sentence}, but cannot: {problem}") if c.rule == "edge"
                  else c for c in claims]
    return KeyEvidence(key, before, {kind: after}, where, tuple(claims), frozenset(dead))


def _edge(key: str, frame: pd.DataFrame, judged: Judged, scale: Scale, ends: dict,
          claims: list[Claim], span: str) -> str | None:
    """The side ("high", "low") where the best trial and EDGE_SHARE of the good ones lie
    in the outer tenth, unless that end is dead; its claim added to `claims`."""
    good = frame[frame["good"]]
    best = judged.best
    best_share = scale.share(float(frame.loc[best.name, "value"]))
    shares = [scale.share(v) for v in good["value"]]
    everyone = [scale.share(v) for v in frame["value"]]
    for side, word, low_end in (("high", "top", False), ("low", "bottom", True)):
        def at(share: float, side: str = side) -> bool:
            return share >= 1 - EDGE if side == "high" else share <= EDGE
        there, tried = sum(map(at, shares)), sum(map(at, everyone))
        if at(best_share) and there >= math.ceil(EDGE_SHARE * len(good)) and \
                tail_chance(len(frame), tried, len(good), there) <= EDGE_CHANCE and \
                low_end not in ends:
            claims.append(Claim("edge", (
                f"the best trial ({judged.metric} {num(best['score'])}) and {there} of the "
                f"best {len(good)} have {key} in the {word} tenth of its range {span}: widen "
                f"it {'upward' if side == 'high' else 'downward'}")))
            return side
    return None


def _nice(value: float) -> float:
    return float(f"{value:.3g}")


def _range_args(kind: str, args: list, low: float, high: float) -> list | None:
    """The moved range as the distribution's arguments, its bounds rounded (integers
    outward, others to 3 significant digits when that keeps them apart); None when the
    move leaves no range."""
    if kind in INTEGER_KINDS:
        low, high = math.floor(low + 1e-9), math.ceil(high - 1e-9)
        low = max(low, 1) if kind == "lograndint" else low
        return [low, high] if low <= high else None
    if _nice(low) < _nice(high):
        low, high = _nice(low), _nice(high)
    if not low < high or (kind == "loguniform" and low <= 0):
        return None
    return [low, high, *args[2:]]


def _taken(key: str, kind: str, args: list, after: list | None,
           train: Mapping[str, Any] | None) -> tuple[list, str | None]:
    """The moved range if the trainable takes both its ends, else its part inside the old
    range (whose ends it took), and the problem."""
    if after is None:
        return list(args), None
    problem = next((p for v in after[:2] if train is not None
                    and (p := searched_value_problem(train, key, v))), None)
    if problem is None:
        return after, None
    inside = [max(after[0], args[0]), min(after[1], args[1]), *args[2:]]
    ordered = inside[0] <= inside[1] if kind in INTEGER_KINDS else inside[0] < inside[1]
    return (inside if ordered else list(args)), problem
