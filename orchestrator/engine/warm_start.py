"""A warm start (the spec's `warm_start:`): an earlier sweep's trials, read before Ray
starts, for the searcher of a new sweep.

The earlier sweep's trials that ended without error and whose settings lie inside the
new search space are what it knows: Optuna's TPE is given them as already evaluated
(the metric each reported last, what the earlier sweep's own searcher was told); the
best of them (`rerun_best`, by `best_<metric>`) is run again first, by any searcher, so
that the new sweep is never worse than what was known. A trial lies inside the new space
when each key searched now holds a value the new distribution can draw, and each key
searched only before holds the value this spec fixes it to; settings fixed in both
(`train.epochs`, raised by `sweep refine`) may differ.

Everything is read here, once: a resumed sweep continues from Tune's own state (the
searcher, with what it was given, is in it) and never reads the source again;
sweep.json records what was read (`warm_start`: the folder, a sha256 of its trials
table, the counts and the configurations run again). No Ray, no torch.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from orchestrator.errors import OrchestratorError
from orchestrator.results import schema
from orchestrator.results.storage import Location, is_uri
from orchestrator.spec import SweepSpec
from orchestrator.spec.distributions import Distribution
from orchestrator.spec.dotted import set_dotted
from orchestrator.states import TrialStatus

# the key of a trial's config that marks a re-run (TrialConfig; trials.parquet's column)
RERUN_KEY = "warm_start_rerun"


@dataclass(frozen=True)
class Known:
    """One earlier trial inside the new space."""

    trial_id: str
    values: dict[str, Any]  # searched key (dotted, under train) -> value, as the space holds it
    value: float | None  # its metric at its last report: what a searcher is told at a trial's end
    best: float | None  # its best_<metric>: what ranks it


@dataclass(frozen=True)
class WarmStartPlan:
    source: str  # as the spec gives it
    folder: str  # where it was found
    metric: str
    trials_sha256: str | None  # of trials.parquet and its parts, as read
    trials: int  # rows of its trials table
    ended: int  # of them, ended without error
    known: tuple[Known, ...]  # ended, inside the new space, with a value
    outside: int  # ended, outside the new space
    reruns: tuple[Known, ...]  # run again first, best first
    learns: bool  # the searcher takes `known` as evaluated (TPE); random and grid do not
    # trials added to the spec's count: none (a re-run is one of its samples), except
    # under a grid, where each re-run is one trial more than the repeats of the grid
    extra_trials: int = 0

    def points(self) -> list[dict]:
        """The re-runs as trial configs (nested under `train`), marked as re-runs."""
        return [{**nested(k.values), RERUN_KEY: True} for k in self.reruns]

    def history(self) -> list[tuple[dict, float]]:
        """(config nested under `train`, metric) of every known trial, for a searcher
        that learns from them."""
        return [(nested(k.values), k.value) for k in self.known] if self.learns else []

    def record(self) -> dict[str, Any]:
        """What sweep.json keeps of it (`warm_start`)."""
        best = schema.best_column(self.metric)
        return {
            "from": self.source, "folder": self.folder, "trials_sha256": self.trials_sha256,
            "trials": self.trials, "ended": self.ended, "inside": len(self.known),
            "outside": self.outside,
            "given_to_searcher": len(self.known) if self.learns else 0,
            "rerun": [{"trial_id": k.trial_id, best: k.best, "config": k.values}
                      for k in self.reruns],
        }

    def summary(self) -> str:
        """The plan's line."""
        given = (f"{len(self.known)} given to the searcher as evaluated" if self.learns
                 else "the searcher does not learn from them")
        rerun = (f"its best {len(self.reruns)} run again first" if self.reruns
                 else "none run again")
        return (f"from {self.folder}: {len(self.known)} of its {self.ended} ended trials lie "
                f"inside this search space ({given}; {rerun})")


def nested(values: Mapping[str, Any]) -> dict:
    """Searched values as a trial config holds them: `{"train": {...}}`."""
    config: dict = {}
    for key, value in values.items():
        set_dotted(config, f"train.{key}", value)
    return config


def native(value: Any) -> Any:
    """A table's value as plain Python (numpy scalars unwrapped, NaN as None)."""
    if hasattr(value, "item") and not isinstance(value, list | tuple | str):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def _finite(value: Any) -> float | None:
    value = native(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def inside(row: Mapping[str, Any], space: Mapping[str, Distribution],
           fixed: Mapping[str, Any], searched_before: Iterable[str]) -> dict[str, Any] | None:
    """The values of a trials-table row for the new space's keys, or None when the row
    lies outside it: a searched key's value the distribution cannot draw, or a key
    searched before (only) whose value is not the one the new spec fixes.

    `fixed` holds the new spec's settings as trials-table columns (`config.<key>`)."""
    values: dict[str, Any] = {}
    for key, dist in space.items():
        ok, value = dist.member(row.get(schema.CONFIG_PREFIX + key))
        if not ok:
            return None
        values[key] = value
    for key in searched_before:
        column = schema.CONFIG_PREFIX + key
        if key in space:
            continue
        if column not in fixed or native(row.get(column)) != fixed[column]:
            return None
    return values


def select(trials: pd.DataFrame, space: Mapping[str, Distribution], fixed: Mapping[str, Any],
           searched_before: Iterable[str], metric: str, mode: str,
           rerun_best: int) -> tuple[list[Known], int, list[Known]]:
    """(the ended trials inside the new space with a value, how many ended trials lie
    outside it, the best `rerun_best` of those inside by best_<metric>; ties: the
    earlier trial id)."""
    searched_before = list(searched_before)
    ended = trials[(trials[schema.STATUS] == TrialStatus.TERMINATED)
                   & trials[schema.STOP_REASON].notna()]
    known: list[Known] = []
    outside = 0
    best = schema.best_column(metric)
    for row in ended.to_dict("records"):
        values = inside(row, space, fixed, searched_before)
        if values is None:
            outside += 1
            continue
        value = _finite(row.get(metric))
        if value is not None:
            known.append(Known(str(row[schema.TRIAL_ID]), values, value, _finite(row.get(best))))
    sign = -1 if mode == "max" else 1
    ranked = sorted((k for k in known if k.best is not None),
                    key=lambda k: (sign * k.best, k.trial_id))
    return known, outside, ranked[:rerun_best]


def trials_sha256(folder: Location) -> str | None:
    """A sha256 of the source's trials table as read: trials.parquet, then its parts in
    order (the rows written after it); None when it has neither."""
    results = folder / schema.RESULTS_DIR
    files = [results / schema.TRIALS_FILE] if (results / schema.TRIALS_FILE).is_file() else []
    files += [p for p in (results / schema.TRIALS_PARTS_DIR).children()
              if p.name.endswith(".parquet")]
    if not files:
        return None
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _locate(spec: SweepSpec) -> Location:
    """The source sweep's folder: a URI or a path as given, else a name in
    `warm_start.storage` (this spec's storage by default)."""
    from orchestrator.results.folder import locate

    warm = spec.warm_start
    source = warm.source
    key = "warm_start.storage" if warm.storage else "warm_start.from"
    try:
        if warm.storage is None and (is_uri(source) or "/" in source
                                     or Path(source).expanduser().is_dir()):
            return locate(source)
        return locate(source, warm.storage or spec.storage)
    except OrchestratorError as exc:
        raise OrchestratorError(f"{key}: {exc}") from None


def plan_warm_start(spec: SweepSpec) -> WarmStartPlan | None:
    """Read the sweep the spec's `warm_start` names and choose what the new sweep is
    given; None without one. Bad input is one line naming the key (exit 2)."""
    from orchestrator.results.load import load_sweep
    from orchestrator.results.rows import config_columns

    warm = spec.warm_start
    if warm is None:
        return None
    folder = _locate(spec)
    try:
        tables = load_sweep(folder)
    except OrchestratorError as exc:
        raise OrchestratorError(f"warm_start.from: {exc}") from None
    name = tables.spec.get("name", folder.name)
    for key, theirs, ours in (("metric", tables.metric, spec.metric),
                              ("mode", tables.mode, spec.mode)):
        if theirs != ours:
            raise OrchestratorError(
                f"warm_start.from: sweep {name} has {key} {theirs!r}, this sweep {ours!r}: "
                f"its trials' scores do not say how good they are here (a warm start needs "
                f"the same metric and mode)")
    ended = tables.trials[(tables.trials[schema.STATUS] == TrialStatus.TERMINATED)
                          & tables.trials[schema.STOP_REASON].notna()] \
        if len(tables.trials) else tables.trials
    if not len(ended):
        raise OrchestratorError(
            f"warm_start.from: sweep {name} in {folder} has no trials that ended without "
            f"error ({len(tables.trials)} trials): nothing to start from")
    fixed = {k: native(v) for k, v in
             config_columns({"train": spec.train.model_dump(mode="json")}).items()}
    known, outside, reruns = select(
        tables.trials, spec.search_space, fixed, tables.spec.get("search_space") or {},
        spec.metric, spec.mode, warm.rerun_best)
    if not known:
        raise OrchestratorError(
            f"warm_start.from: none of the {len(ended)} ended trials of sweep {name} lies "
            f"inside this search space (its search_space: "
            f"{', '.join(tables.spec.get('search_space') or {}) or 'none'}): nothing to "
            f"start from; widen the space or drop warm_start")
    extra = len(reruns) if spec.grid_size > 1 else 0
    if not extra:  # the re-runs are samples of the sweep: no more of them than it draws
        reruns = reruns[:spec.num_samples]
    return WarmStartPlan(
        source=warm.source, folder=str(folder), metric=spec.metric,
        trials_sha256=trials_sha256(folder), trials=len(tables.trials), ended=len(ended),
        known=tuple(known), outside=outside, reruns=tuple(reruns),
        learns=spec.searcher.name == "optuna", extra_trials=extra)
