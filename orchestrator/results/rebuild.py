"""Rebuild the result tables from Ray Tune's experiment folder alone.

Each trial folder holds params.json (its config), result.json (one JSON line per
report) and, when it failed, error.txt. The rows come from the same functions the
live sink uses, so a rebuild of a finished sweep gives the same rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from orchestrator.results import rows, schema
from orchestrator.results.storage import Location, as_location
from orchestrator.results.tables import frames
from orchestrator.states import SweepStatus, TrialStatus


def trial_folders(experiment_dir: Location | str | Path) -> list[Location]:
    """The trial folders of an experiment (those with Tune's params.json)."""
    return [child for child in as_location(experiment_dir).children()
            if (child / "params.json").is_file()]


def epoch_results(trial_folder: Location | Path) -> list[dict]:
    """The per-epoch reports in a trial folder's result.json (a line cut short by a
    killed writer is skipped)."""
    result_file = trial_folder / "result.json"
    if not result_file.is_file():
        return []
    results = []
    for line in result_file.read_text().splitlines():
        try:
            result = json.loads(line) if line else {}
        except json.JSONDecodeError:
            continue
        if "epoch" in result:
            results.append(result)
    return results


def history_rows(experiment_dir: Location | str | Path) -> dict[tuple, dict]:
    """History rows from every trial folder, keyed by (trial_id, epoch); an epoch
    reported twice (re-run after a restore) keeps its last row."""
    history: dict[tuple, dict] = {}
    for folder in trial_folders(experiment_dir):
        for result in epoch_results(folder):
            row = rows.history_row(result["trial_id"], result)
            history[(row[schema.TRIAL_ID], row["epoch"])] = row
    return history


def rebuild_tables(experiment_dir: Location | str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trials, history) frames rebuilt from `experiment_dir`."""
    experiment_dir = as_location(experiment_dir)
    sweep = json.loads((experiment_dir / schema.RESULTS_DIR / schema.SWEEP_FILE).read_text())
    metric = sweep["spec"]["metric"]
    budget_stopped = set(sweep.get("budget_stopped", []))
    # in a sweep that did not finish, a trial that did not end itself may have been cut
    # (not stopped by the scheduler): it is left unfinished, as an interrupt leaves it
    finished = sweep.get("status") == SweepStatus.FINISHED
    trials: dict[str, dict] = {}
    for folder in trial_folders(experiment_dir):
        config = json.loads((folder / "params.json").read_text())
        results = epoch_results(folder)
        trial_id = results[-1]["trial_id"] if results else folder.name
        error_file = folder / "error.txt"
        last = results[-1] if results else None
        failed = error_file.is_file() and not (last and last.get("stop_reason"))
        error = rows.error_text(error_file.read_text()) if failed else None
        ended = finished or bool(last and last.get("stop_reason"))
        status = (TrialStatus.ERROR if failed else TrialStatus.TERMINATED if ended
                  else TrialStatus.PAUSED)
        by_epoch = {r["epoch"]: rows.history_row(trial_id, r) for r in results}
        trials[trial_id] = rows.trial_row(trial_id, config, status, last, metric, error,
                                          budget_hit=trial_id in budget_stopped,
                                          history=[by_epoch[e] for e in sorted(by_epoch)],
                                          mode=sweep["spec"]["mode"])
    return frames(trials, history_rows(experiment_dir), metric, sweep["spec"]["mode"])
