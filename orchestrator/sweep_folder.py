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

from orchestrator.errors import OrchestratorError
from orchestrator.results import schema
from orchestrator.storage import Location, as_location, is_uri, open_storage

DEFAULT_STORAGE = "./sweeps"


def locate(name_or_path: str, storage: str | None = None) -> Location:
    """The experiment folder of a sweep given by its folder (or URI), or by its name in
    `storage` (a folder or a URI; ./sweeps when not given)."""
    if is_uri(name_or_path):
        folder = open_storage(name_or_path)
        if folder.is_dir():
            return folder
        raise OrchestratorError(f"no sweep at {name_or_path}")
    candidate = Path(name_or_path).expanduser()
    if storage is None and candidate.is_dir():
        return as_location(candidate)
    base = storage or DEFAULT_STORAGE
    folder = open_storage(base) / name_or_path
    if folder.is_dir():
        return folder
    where = f"in {base}" if storage else f"in {base}, and it is not a folder"
    raise OrchestratorError(f"no sweep {name_or_path!r} {where}")


def sweep_json_path(folder: Location | Path) -> Location:
    return as_location(folder) / schema.RESULTS_DIR / schema.SWEEP_FILE


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
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OrchestratorError(
            f"{path}: is not a readable Parquet file ({first}); move it aside and run the "
            "command again: the rows are rebuilt from Tune's trial folders"
        ) from None


def history_parts(results_dir: Location | Path) -> list[Location]:
    """The history parts written since history.parquet was last rewritten, in order."""
    folder = as_location(results_dir) / schema.HISTORY_PARTS_DIR
    return [part for part in folder.children() if part.name.endswith(".parquet")]


def read_history(results_dir: Location | Path) -> pd.DataFrame | None:
    """history.parquet with the parts written after it: one row per (trial_id, epoch),
    the latest write of a row winning; None when nothing was ever written."""
    results_dir = as_location(results_dir)
    main = read_table(results_dir / schema.HISTORY_FILE)
    parts = [read_table(part) for part in history_parts(results_dir)]
    frames = [f for f in (main, *parts) if f is not None]
    if not parts or not frames:
        return main
    combined = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    combined = combined.drop_duplicates(list(schema.HISTORY_KEY), keep="last")
    return combined.sort_values(list(schema.HISTORY_KEY)).reset_index(drop=True)


def read_tables(folder: Location | Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    results = as_location(folder) / schema.RESULTS_DIR
    return read_table(results / schema.TRIALS_FILE), read_history(results)
