"""The trials as evidence: which ended, how each failed (diverged, never beat chance,
`lr_too_low`, `lr_too_high`), which are the good ones; the claims made of them; and the
pieces the rules share (a range's own axis, the dead end of an ordered key, wording)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from orchestrator.analysis.evidence.chance import all_chance
from orchestrator.analysis.evidence.thresholds import (
    DEAD_CHANCE,
    MAX_GOOD,
    MIN_DEAD,
    MIN_GOOD,
    TOP_SHARE,
)
from orchestrator.diagnosis.curves import read_curves
from orchestrator.results import schema
from orchestrator.states import Label, StopReason

# how a trial failed: its stop reason or diagnosis, or its curves against chance
DIVERGED, NO_CHANCE, TOO_LOW, TOO_HIGH = (Label.DIVERGED, "never beat chance", Label.LR_TOO_LOW,
                                          Label.LR_TOO_HIGH)
# the ways a region fails "the same way": learning nothing, for any key; for a rate, also
# too slowly at its low end, too hard at its high end
LEARNED_NOTHING = frozenset({DIVERGED, NO_CHANCE})
RATE_LOW = frozenset({NO_CHANCE, TOO_LOW})
RATE_HIGH = frozenset({DIVERGED, NO_CHANCE, TOO_HIGH})
BATCH_KEY = "batch_size"
EFFECTIVE = "effective_lr"  # the rate after batch scaling (trials.parquet)


def is_rate(key: str) -> bool:
    """A learning rate: the shared trainable's, or a loop's key named like one."""
    return key.split(".")[-1] in ("lr", "learning_rate")


@dataclass(frozen=True)
class Claim:
    rule: str  # dead, edge, narrow, prune, kept, rate, limit, no_effect
    sentence: str  # the evidence with its counts, then what to do


@dataclass(frozen=True)
class KeyEvidence:
    key: str
    before: dict[str, list]  # {kind: args}, as searched
    after: dict[str, list]  # as the evidence moves it (equal to `before`: no change)
    where: str | None = None  # where the good trials lie
    claims: tuple[Claim, ...] = ()
    # the trials in the regions or choices found dead (their failure is this key's)
    dead: frozenset = field(default=frozenset(), compare=False, repr=False)

    @property
    def changed(self) -> bool:
        return self.after != self.before


@dataclass(frozen=True)
class Evidence:
    judged: int  # trials that ended without error: the evidence
    total: int
    metric: str
    keys: tuple[KeyEvidence, ...] = ()
    note: str | None = None  # why no claim could be made, when none could

    def sentences(self) -> list[str]:
        """The claims that move or keep a key, key by key (not "no measurable effect",
        nor an edge the trainable cannot widen past)."""
        return [c.sentence for k in self.keys for c in k.claims
                if c.rule not in ("no_effect", "limit")]

    @property
    def changed(self) -> list[KeyEvidence]:
        return [k for k in self.keys if k.changed]


@dataclass(frozen=True)
class Judged:
    """One row per trial that ended without error: `score` (NaN: none), `way` (how it
    failed, None: it did not), `good`, with the trials table's columns."""
    frame: pd.DataFrame
    metric: str
    mode: str

    @property
    def good(self) -> pd.DataFrame:
        return self.frame[self.frame["good"]]

    @property
    def best(self) -> pd.Series:
        good = self.good
        return good.loc[good["score"].idxmax() if self.mode == "max" else good["score"].idxmin()]

    def without(self, trials: frozenset) -> Judged:
        return Judged(self.frame[~self.frame.index.isin(trials)], self.metric, self.mode)


def good_count(learners: int) -> int:
    return min(MAX_GOOD, max(MIN_GOOD, round(learners * TOP_SHARE)))


def _chance_epochs(trials: pd.DataFrame, history: pd.DataFrame | None, metric: str
                   ) -> tuple[list, list]:
    """Per trial: did its validation score ever beat chance (None: not known), by the
    diagnosis' own definition (`diagnosis.curves.Curves`), and the first epoch it did."""
    if history is None or not len(history):
        return [None] * len(trials), [None] * len(trials)
    rows: dict[str, list[dict]] = {}
    for row in history.to_dict("records"):  # one pass: a groupby per trial is slow
        rows.setdefault(row[schema.TRIAL_ID], []).append(row)
    learned, first = [], []
    for row in trials.to_dict("records"):
        curve = rows.get(row[schema.TRIAL_ID])
        c = read_curves(curve, row, metric) if curve else None
        learned.append(c.learned() if c else None)
        first.append(next((c.epochs[i] for i in range(c.n) if c.beat_chance_at(i)), None)
                     if c else None)
    return learned, first


def _way(stop_reason: str, diagnosis, learned) -> str | None:
    if stop_reason == StopReason.DIVERGED or diagnosis == Label.DIVERGED:
        return DIVERGED
    if learned is False:
        return NO_CHANCE
    return diagnosis if diagnosis in (TOO_LOW, TOO_HIGH) else None


def judge(trials: pd.DataFrame, metric: str, mode: str,
          history: pd.DataFrame | None = None, keys: list[str] | None = None) -> Judged:
    """The trials that ended (an errored or unfinished one says nothing of its settings),
    how each failed, and the good ones: the best of those that learned something.

    A trial stopped early (by the scheduler or the time budget) that had not beaten
    chance by then failed only if every good trial had beaten it by that epoch: before,
    it was too short to tell. `keys`: the searched keys whose settings to keep (all)."""
    best = schema.best_column(metric)
    frame = trials[trials[schema.STOP_REASON].notna()
                   & (trials[schema.STOP_REASON] != StopReason.ERROR)].copy()
    learned, first = _chance_epochs(frame, history, metric)
    diagnosis = frame["diagnosis"] if "diagnosis" in frame else pd.Series(None, frame.index)
    frame["way"] = [_way(s, d if isinstance(d, str) else None, la) for s, d, la
                    in zip(frame[schema.STOP_REASON], diagnosis, learned)]
    frame["score"] = pd.to_numeric(frame[best], errors="coerce") if best in frame else math.nan
    learners = frame[frame["score"].notna() & ~frame["way"].isin(LEARNED_NOTHING)]
    top = learners.sort_values("score", ascending=mode == "min", kind="stable")
    top = top.head(good_count(len(learners)))
    frame["good"] = frame.index.isin(top.index) if len(top) >= MIN_GOOD else False
    firsts = pd.Series(first, index=frame.index, dtype=float)
    known = firsts[frame["good"]]
    by = known.max() if len(known) and known.notna().all() else math.inf
    ran = pd.to_numeric(frame["epochs"], errors="coerce") if "epochs" in frame else math.nan
    cut_short = frame[schema.STOP_REASON].isin((StopReason.SCHEDULER, StopReason.BUDGET)) & \
        (frame["way"] == NO_CHANCE) & ~(ran >= by)
    frame.loc[cut_short, "way"] = None
    # what the rules read, no more: every subset of the frame copies its columns
    settings = None if keys is None else {schema.CONFIG_PREFIX + k for k in (*keys, BATCH_KEY)}
    kept = [c for c in frame.columns if c in (schema.TRIAL_ID, schema.STOP_REASON, EFFECTIVE,
                                              "score", "way", "good")
            or (c.startswith(schema.CONFIG_PREFIX) and (settings is None or c in settings))]
    return Judged(frame[kept], metric, mode)


# -- wording ---------------------------------------------------------------------------

def num(value: float) -> str:
    return f"{value:.3g}"


def percent(p: float) -> str:
    return f"{100 * p:.0f}%" if p >= 0.1 else f"{100 * p:.2g}%"


def ways_text(ways: list[str]) -> str:
    """`never beat chance`, or `failed (5 never beat chance, 2 read lr_too_low)`."""
    said = {DIVERGED: "diverged", NO_CHANCE: "never beat chance", TOO_LOW: "read lr_too_low",
            TOO_HIGH: "read lr_too_high"}
    counts = Counter(ways)
    if len(counts) == 1:
        return said[ways[0]]
    return "failed (" + ", ".join(f"{n} {said[w]}" for w, n in counts.most_common()) + ")"


def families(key: str, low_end: bool | None = None) -> tuple[frozenset, ...]:
    """The ways trials at one end of `key` (None: at one choice) may fail together."""
    if not is_rate(key):
        return (LEARNED_NOTHING,)
    if low_end is None:
        return LEARNED_NOTHING, RATE_LOW, RATE_HIGH
    return (RATE_LOW,) if low_end else (RATE_HIGH,)


def all_failed(frame: pd.DataFrame, rows: pd.DataFrame, family: frozenset) -> bool:
    """Every one of `rows` (MIN_DEAD at least, none good) failed a way of `family`, and
    no more likely by chance than DEAD_CHANCE, given the failures in `frame`."""
    if len(rows) < MIN_DEAD or rows["good"].any() or not rows["way"].isin(family).all():
        return False
    failed = int((frame["way"].isin(family) & ~frame["good"]).sum())
    return all_chance(len(frame), failed, len(rows)) <= DEAD_CHANCE


@dataclass(frozen=True)
class Scale:
    """A searched range on its own axis: log for a log-distributed key."""
    low: float
    high: float
    log: bool

    def __call__(self, value: float) -> float:
        return math.log(value) if self.log else value

    def back(self, scaled: float) -> float:
        return math.exp(scaled) if self.log else scaled

    @property
    def width(self) -> float:
        return self(self.high) - self(self.low)

    def share(self, value: float) -> float:
        """Where `value` lies: 0 at the low end, 1 at the high end."""
        return (self(value) - self(self.low)) / self.width


def dead_end(key: str, frame: pd.DataFrame, low_end: bool
             ) -> tuple[float, pd.DataFrame] | None:
    """The end of `frame` ordered by its `value` where every trial failed one way
    (`all_failed`), with a trial beyond it that did not: (its last value, its trials)."""
    ordered = frame.sort_values("value", ascending=low_end, kind="stable")
    values, ways, good = list(ordered["value"]), list(ordered["way"]), list(ordered["good"])
    for family in families(key, low_end):
        length = 0
        while length < len(ways) and ways[length] in family and not good[length]:
            length += 1
        while 0 < length < len(values) and values[length - 1] == values[length]:
            length -= 1  # a value that dead and live trials share is not dead
        rows = ordered.iloc[:length]
        if length < len(values) and all_failed(frame, rows, family):
            return values[length - 1], rows
    return None
