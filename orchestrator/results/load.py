"""A sweep's tables for reading commands (export, report, ls): the Parquet files, with
what Tune's trial folders recorded after their last write. No Ray, no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from orchestrator.results import schema
from orchestrator.results.folder import read_sweep_json, read_tables
from orchestrator.results.rebuild import rebuild_tables
from orchestrator.results.storage import Location
from orchestrator.results.tables import frames


@dataclass
class SweepTables:
    folder: Location
    sweep: dict[str, Any]  # sweep.json
    trials: pd.DataFrame
    history: pd.DataFrame
    rebuilt: list[str]  # what came from Tune's trial folders, in words; empty if nothing

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
    completed from Tune's trial folders: (trial_id, epoch) once, the last report kept."""
    sweep = read_sweep_json(folder)
    metric = sweep["spec"]["metric"]
    trials, history = read_tables(folder)
    rebuilt: list[str] = []
    if trials is not None and history is not None and sweep.get("status") != "running":
        return SweepTables(folder, sweep, trials, history, rebuilt)

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
