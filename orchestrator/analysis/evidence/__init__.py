"""Evidence across trials: for each searched key, where the good trials lie against its
range (on a log axis for a log-distributed key); whether the best lies at an edge (the
outer tenth of a range, or an end choice), so that the range moves or widens that way;
the end regions and choices where every trial failed the same way (diverged, never beat
chance, `lr_too_low`, `lr_too_high`), to be cut; and keys with no measurable effect.

Pure functions of the trials table (the history, where a trial's curves must be read to
tell whether it ever beat chance) and the resolved spec (sweep.json). Every claim carries
its counts, and none is made below the minimum of evidence in `thresholds`.

The learning rate is read first: trials that failed in its dead regions are its
evidence, and are left out when the other keys are read (a rate far too low makes every
other setting look dead too). The batch size is read with the effective (scaled) rate,
so that a batch that looks bad only because its scaled rate diverged is not dropped.
`sweep report` shows the claims as "what to try next", the advice line speaks from them,
and `sweep refine` writes them into the next spec (`orchestrator.analysis.refine`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from orchestrator.analysis.axes import CATEGORY_KINDS
from orchestrator.analysis.evidence.choices import choice_evidence
from orchestrator.analysis.evidence.judged import (
    BATCH_KEY,
    EFFECTIVE,
    LEARNED_NOTHING,
    Claim,
    Evidence,
    Judged,
    KeyEvidence,
    dead_end,
    is_rate,
    judge,
    num,
    ways_text,
)
from orchestrator.analysis.evidence.ranges import range_evidence, values_of
from orchestrator.analysis.evidence.thresholds import MIN_GOOD, MIN_TRIALS
from orchestrator.results import schema

__all__ = ["Claim", "Evidence", "KeyEvidence", "evidence", "judge"]

RATE = "optimizer.lr"  # the shared trainable's rate: the one batch scaling scales


def _effective_ends(judged: Judged) -> tuple[list[Claim], set]:
    """Ends of the effective (scaled) rate where every trial failed one way, whatever its
    batch size, that the searched rate's own ends do not already show."""
    frame = judged.frame.assign(value=pd.to_numeric(judged.frame[EFFECTIVE], errors="coerce"))
    frame = frame[frame["value"].notna()]
    if len(frame) < MIN_TRIALS:
        return [], set()
    claims, dead = [], set()
    own = values_of(judged, RATE)
    for low_end, sign, word in ((True, "<=", "above"), (False, ">=", "below")):
        if dead_end(RATE, own, low_end):
            continue  # the searched rate's own end says it
        found = dead_end(RATE, frame, low_end)
        if found:
            edge, rows = found
            dead |= set(rows.index)
            batches = sorted(set(pd.to_numeric(rows[schema.CONFIG_PREFIX + BATCH_KEY],
                                               errors="coerce").dropna().astype(int)))
            claims.append(Claim("rate", (
                f"{len(rows)} of {len(rows)} trials with effective_lr {sign} {num(edge)} "
                f"{ways_text(list(rows['way']))}, at batch sizes "
                f"{', '.join(map(str, batches))}: keep the scaled rate {word} it")))
    return claims, dead


def _one(key: str, dist: dict, judged: Judged, train: dict, scaled: bool,
         push: tuple[str, str] | None = None) -> tuple[KeyEvidence, tuple[str, str] | None]:
    (kind, args), = dist.items()
    if schema.CONFIG_PREFIX + key not in judged.frame:
        return KeyEvidence(key, dist, dist), None
    if kind in CATEGORY_KINDS:
        return choice_evidence(key, kind, list(args), judged, train, scaled)
    return range_evidence(key, kind, list(args), judged, train, push), None


def evidence(trials: pd.DataFrame, spec: dict[str, Any],
             history: pd.DataFrame | None = None) -> Evidence:
    """What the trials say of each searched key (see the module's docstring)."""
    space, metric = spec.get("search_space") or {}, spec["metric"]
    total = len(trials)
    if (spec.get("scheduler") or {}).get("name") == "pbt":
        return Evidence(0, total, metric, note=(
            "PBT changes each trial's settings as it runs: the trials table holds where a "
            "trial started, not what scored; no claim is drawn from it"))
    if not space:
        return Evidence(0, total, metric, note="nothing is searched")
    judged = judge(trials, metric, spec["mode"], history, list(space)) if total else None
    n = 0 if judged is None else len(judged.frame)
    if judged is None or n < MIN_TRIALS:
        return Evidence(n, total, metric, note=(
            f"{n} trials ended without error; a claim needs {MIN_TRIALS} at least"))
    if not judged.frame["good"].any():
        learned = int((judged.frame["score"].notna()
                       & ~judged.frame["way"].isin(LEARNED_NOTHING)).sum())
        return Evidence(n, total, metric, note=(
            f"{learned} of {n} trials learned anything (neither diverged nor stayed at "
            f"chance); where the good trials lie needs {MIN_GOOD}"))
    train = spec.get("train") or {}
    scaled = (train.get("batch_scaling") or {}).get("rule", "none") != "none"
    found: dict[str, KeyEvidence] = {}
    push = None
    if BATCH_KEY in space:  # first: its edge may be the rate's
        found[BATCH_KEY], push = _one(BATCH_KEY, space[BATCH_KEY], judged, train, scaled)
    explained: set = set()
    for key in [k for k in space if is_rate(k)]:
        found[key], _ = _one(key, space[key], judged, train, scaled,
                             push if key == RATE else None)
        explained |= found[key].dead
        if key == RATE and scaled and BATCH_KEY in space and EFFECTIVE in judged.frame:
            rate = found[key]
            claims, dead = _effective_ends(judged)
            found[key] = KeyEvidence(rate.key, rate.before, rate.after, rate.where,
                                     rate.claims + tuple(claims), rate.dead | dead)
            explained |= dead
    if explained and BATCH_KEY in space:  # read again without the rate's failures
        found[BATCH_KEY], _ = _one(BATCH_KEY, space[BATCH_KEY],
                                   judged.without(frozenset(explained)), train, scaled)
    rest = judged.without(frozenset(explained))
    for key in space:
        if key not in found:
            found[key], _ = _one(key, space[key], rest, train, scaled)
    return Evidence(n, total, metric, tuple(found[key] for key in space))
