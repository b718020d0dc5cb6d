"""A sweep's folder on disk: finding it by name or path and reading what it holds.

Nothing here imports Ray or torch: `resume` checks a folder before it starts Ray,
and read-only commands stay fast. Every problem is one `OrchestratorError` line.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from orchestrator.errors import OrchestratorError, first_line
from orchestrator.results import schema
from orchestrator.results.storage import (
    Location,
    as_location,
    is_dir_at,
    is_uri,
    open_storage,
)
from orchestrator.spec.settings import DEFAULT_STORAGE


def locate(name_or_path: str, storage: str | None = None) -> Location:
    """The experiment folder of a sweep given by its folder (or URI), or by its name in
    `storage` (a folder or a URI; ./sweeps when not given)."""
    if is_uri(name_or_path):
        folder = open_storage(name_or_path, "NAME_OR_PATH")
        if is_dir_at(folder, "NAME_OR_PATH"):
            return folder
        raise OrchestratorError(f"no sweep at {name_or_path}")
    candidate = Path(name_or_path).expanduser()
    if storage is None and candidate.is_dir():
        return as_location(candidate)
    base = storage or DEFAULT_STORAGE
    option = "--storage" if storage else "storage"
    folder = open_storage(base, option) / name_or_path
    if is_dir_at(folder, option):
        return folder
    where = f"in {base}" if storage else f"in {base}, and it is not a folder"
    raise OrchestratorError(f"no sweep {name_or_path!r} {where}")


def sweep_json_path(folder: Location | Path) -> Location:
    return as_location(folder) / schema.RESULTS_DIR / schema.SWEEP_FILE


def tune_states(folder: Location | Path) -> list[Location]:
    """Ray Tune's experiment state files in a sweep's folder (`experiment_state-*.json`),
    oldest first; none when `tuner.pkl` is missing too (without both Tune cannot
    restore the sweep: the driver died before Tune's first save)."""
    folder = as_location(folder)
    if not (folder / "tuner.pkl").is_file():
        return []
    return sorted((c for c in folder.children()
                   if c.name.startswith("experiment_state-") and c.name.endswith(".json")),
                  key=lambda c: c.name)


def read_sweep_json(folder: Location | Path) -> dict[str, Any]:
    """sweep.json of the sweep in `folder`, checked to hold a spec."""
    folder = as_location(folder)
    path = sweep_json_path(folder)
    if not path.is_file():
        raise OrchestratorError(f"{folder}: is not a sweep folder (it has no "
                                f"{schema.RESULTS_DIR}/{schema.SWEEP_FILE})")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OrchestratorError(f"{path}: is not readable JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("spec"), dict):
        raise OrchestratorError(f"{path}: spec: is missing (not a sweep.json this tool wrote)")
    return data


def read_table(path: Location | Path) -> pd.DataFrame | None:
    """A result table, or None when it was never written; a damaged file is an error
    that says how to recover (the rows can be rebuilt from Tune's trial folders)."""
    path = as_location(path)
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(io.BytesIO(path.read_bytes()))
    except Exception as exc:  # pyarrow raises several kinds for damaged files
        raise OrchestratorError(
            f"{path}: is not a readable Parquet file ({first_line(exc)}); move it aside and "
            "run the command again: the rows are rebuilt from Tune's trial folders"
        ) from None


def parts_of(parts_dir: Location | Path) -> list[Location]:
    """The parts a table's writer left in `parts_dir` since it last rewrote the main
    file, oldest first (`results.parted`)."""
    folder = as_location(parts_dir)
    return [part for part in folder.children() if part.name.endswith(".parquet")]


def read_parted(results_dir: Location | Path, file: str, parts_dir: str,
                key: tuple[str, ...]) -> pd.DataFrame | None:
    """A table's main file with the parts written after it: one row per `key`, the
    latest write of a row winning; None when nothing was ever written."""
    results_dir = as_location(results_dir)
    main = read_table(results_dir / file)
    parts = [read_table(part) for part in parts_of(results_dir / parts_dir)]
    frames = [f for f in (main, *parts) if f is not None]
    if not parts or not frames:
        return main
    combined = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    combined = combined.drop_duplicates(list(key), keep="last")
    return combined.sort_values(list(key)).reset_index(drop=True)


def read_history(results_dir: Location | Path) -> pd.DataFrame | None:
    """history.parquet with its parts: one row per (trial_id, epoch)."""
    return read_parted(results_dir, schema.HISTORY_FILE, schema.HISTORY_PARTS_DIR,
                       schema.HISTORY_KEY)


def read_trials(results_dir: Location | Path) -> pd.DataFrame | None:
    """trials.parquet with its parts: one row per trial."""
    return read_parted(results_dir, schema.TRIALS_FILE, schema.TRIALS_PARTS_DIR,
                       schema.TRIALS_KEY)


def read_tables(folder: Location | Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    results = as_location(folder) / schema.RESULTS_DIR
    return read_trials(results), read_history(results)
