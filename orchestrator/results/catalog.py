"""`sweep ls`: the sweeps in a storage folder, one line each, from their files."""

from __future__ import annotations

import pandas as pd

from orchestrator.errors import OrchestratorError
from orchestrator.results import schema
from orchestrator.results.folder import (
    read_sweep_json,
    read_trials,
    sweep_json_path,
    tune_states,
)
from orchestrator.results.lease import is_held
from orchestrator.results.load import load_sweep
from orchestrator.results.storage import is_dir_at, open_storage
from orchestrator.states import SweepStatus


def _is_sweep(folder) -> bool:
    """A sweep's folder: it has a sweep.json, or (that moved aside) a trials table."""
    results = folder / schema.RESULTS_DIR
    return (sweep_json_path(folder).is_file() or (results / schema.TRIALS_FILE).is_file()
            or (results / schema.TRIALS_PARTS_DIR).is_dir())


# a stopped sweep without Tune's state: `sweep resume` refuses it, so ls must not offer it
START_AGAIN = "start it again with `sweep run SPEC --overwrite` (no Ray Tune state to resume)"


def _state(sweep: dict, folder) -> str:
    status = sweep.get("status", "?")
    if status == "unknown":
        return "unknown (sweep.json is missing)"
    resumable = bool(tune_states(folder))
    if status == SweepStatus.RUNNING:
        try:
            held = is_held(folder)  # the driver's lease tells a live one from a dead one
        except OrchestratorError:  # a lease the store will not show (no read permission)
            return "running (its lease is unreadable here)"
        if held:
            return "running"
        if held is None:  # no lease on this store: a live driver cannot be told apart
            return ("running (or its driver died: sweep resume)" if resumable else
                    f"running (or its driver died before Ray Tune's first save: "
                    f"{START_AGAIN})")
        return ("killed (its driver died): sweep resume" if resumable else
                f"killed (its driver died): {START_AGAIN}")
    if status == SweepStatus.INTERRUPTED and not resumable:
        return f"interrupted: {START_AGAIN}"
    return status


def list_sweeps(storage: str) -> pd.DataFrame:
    """name, trials by status, best metric, started, state, of every sweep in `storage`
    (a folder or a URI; folders with neither a sweep.json nor a trials table are not
    sweeps and are left out)."""
    where = open_storage(storage, "--storage")
    if not is_dir_at(where, "--storage"):
        raise OrchestratorError(f"--storage: {storage} is not a folder")
    rows = []
    for folder in (p for p in where.children() if _is_sweep(p)):
        try:
            trials = read_trials(folder / schema.RESULTS_DIR)  # its file and parts
            if not sweep_json_path(folder).is_file():  # moved aside: what the tables say
                sweep = load_sweep(folder).sweep
            else:
                sweep = read_sweep_json(folder)
            if trials is None:  # the table is gone: its rows come back from Tune's folders
                trials = load_sweep(folder).trials
        except OrchestratorError as exc:  # one damaged sweep does not hide the others
            rows.append({"name": folder.name, "state": f"unreadable: {exc}"})
            continue
        spec = sweep["spec"]
        best_col = schema.best_column(spec["metric"])
        best = None
        if trials is not None and best_col in trials and trials[best_col].notna().any():
            values = trials[best_col].dropna()
            best = values.max() if spec["mode"] == "max" else values.min()
        counts = ("0" if trials is None else
                  ", ".join(f"{n} {s}" for s, n in trials[schema.STATUS].value_counts().items()))
        rows.append({
            "name": spec["name"], "trials": counts,
            "best": f"{spec['metric']} {best:.4g}" if best is not None else "-",
            "started": sweep.get("started_at", "-"), "ended": sweep.get("ended_at", "-"),
            "state": _state(sweep, folder),
        })
    return pd.DataFrame(rows, columns=["name", "trials", "best", "started", "ended", "state"])
