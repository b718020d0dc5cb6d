"""A sweep's tables for reading commands (export, report, ls): the Parquet files, with
what Tune's trial folders recorded after their last write. No Ray, no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from orchestrator.results import schema
from orchestrator.results.folder import read_sweep_json, read_tables, sweep_json_path
from orchestrator.results.rebuild import rebuild_tables
from orchestrator.results.storage import Location
from orchestrator.results.tables import frames
from orchestrator.spec.settings import MODE_OF
from orchestrator.states import SweepStatus


@dataclass
class SweepTables:
    folder: Location
    sweep: dict[str, Any]  # sweep.json
    trials: pd.DataFrame
    history: pd.DataFrame
    rebuilt: list[str]  # what came from Tune's trial folders, in words; empty if nothing
    warning: str | None = None  # sweep.json is missing: what the tables could not tell

    @property
    def spec(self) -> dict[str, Any]:
        return self.sweep["spec"]

    @property
    def metric(self) -> str:
        return self.spec["metric"]

    @property
    def mode(self) -> str:
        return self.spec["mode"]


def load_sweep(folder: Location) -> SweepTables:
    """The tables of the sweep in `folder`. A sweep that finished or was interrupted
    wrote them whole; for one killed mid-way (or whose files are missing) the rows are
    completed from Tune's trial folders: (trial_id, epoch) once, the last report kept.
    Without sweep.json (moved aside) the tables are read as they are, with a warning."""
    trials, history = read_tables(folder)
    sweep, warning = read_sweep(folder, trials, history)
    metric = sweep["spec"]["metric"]
    rebuilt: list[str] = []
    if trials is not None and history is not None and sweep.get("status") != SweepStatus.RUNNING:
        return SweepTables(folder, sweep, trials, history, rebuilt, warning)

    # Tune's trial folders, read once: their trial rows and every reported epoch
    folder_trials, folder_history = rebuild_tables(folder)
    live_history = {} if history is None else {
        (r[schema.TRIAL_ID], r["epoch"]): r for r in history.to_dict("records")}
    from_folders = {(r[schema.TRIAL_ID], r["epoch"]): r
                    for r in folder_history.to_dict("records")}
    added = {k: v for k, v in from_folders.items() if k not in live_history}
    if added or history is None:
        rebuilt.append(f"{len(added)} history rows")
    history_rows_all = {**live_history, **added}

    live_trials = {} if trials is None else {
        r[schema.TRIAL_ID]: r for r in trials.to_dict("records")}
    missing = {r[schema.TRIAL_ID]: r for r in folder_trials.to_dict("records")
               if r[schema.TRIAL_ID] not in live_trials}
    if missing or trials is None:
        rebuilt.append(f"{len(missing)} trial rows")
    trials, history = frames({**live_trials, **missing}, history_rows_all, metric,
                             sweep["spec"]["mode"])
    return SweepTables(folder, sweep, trials, history, rebuilt)


def read_sweep(folder: Location, trials: pd.DataFrame | None,
               history: pd.DataFrame | None) -> tuple[dict[str, Any], str | None]:
    """sweep.json, or, when it is missing (moved aside: it was unreadable) but the
    trials table is there, what the tables say of the sweep and a one-line warning of
    what they cannot say. A folder with neither is not a sweep (`read_sweep_json`)."""
    stand_in = None if sweep_json_path(folder).is_file() or trials is None else \
        _stand_in(folder, trials, history)
    if stand_in is None:
        return read_sweep_json(folder), None
    spec = stand_in["spec"]
    return stand_in, (
        f"warning: {sweep_json_path(folder)} is missing: read from the tables alone "
        f"(metric {spec['metric']}, {spec['mode']}); the spec, its search space, the "
        "sweep's status and times are unknown")


def _stand_in(folder: Location, trials: pd.DataFrame,
              history: pd.DataFrame | None) -> dict[str, Any] | None:
    """What sweep.json would say that the tables tell: the metric (its `best_` column),
    whether it is maximised, the epochs; the name is the folder's."""
    best = [c for c in trials.columns if c.startswith("best_") and c != "best_epoch"]
    if len(best) != 1:
        return None
    metric = best[0].removeprefix("best_")
    epochs = int(history["epoch"].max()) if history is not None and len(history) else None
    spec = {"name": folder.name, "metric": metric,
            "mode": MODE_OF.get(metric) or _mode_of(trials, history, metric),
            "search_space": {}, "scheduler": {}, "searcher": {}, "train": {"epochs": epochs}}
    return {"spec": spec, "status": "unknown"}


def _mode_of(trials: pd.DataFrame, history: pd.DataFrame | None, metric: str) -> str:
    """max or min: which of them each trial's best value is, over its epochs (a metric
    of a user's loop, which has no mode of its own); max when the tables cannot say."""
    if history is None or metric not in history or not len(history):
        return "max"
    by_trial = history.groupby(schema.TRIAL_ID)[metric]
    best = trials.set_index(schema.TRIAL_ID)[schema.best_column(metric)].dropna()
    lows = (best == by_trial.min().reindex(best.index)).sum()
    highs = (best == by_trial.max().reindex(best.index)).sum()
    return "min" if lows > highs else "max"
