"""A sweep's folder on disk: finding it by name or path and reading what it holds.

Nothing here imports Ray or torch: `resume` checks a folder before it starts Ray,
and read-only commands stay fast. Every problem is one `OrchestratorError` line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from orchestrator.errors import OrchestratorError
from orchestrator.results import schema

DEFAULT_STORAGE = "./sweeps"


def locate(name_or_path: str, storage: str | None = None) -> Path:
    """The experiment folder of a sweep given by its folder, or by its name in `storage`
    (the spec's default storage when not given)."""
    candidate = Path(name_or_path).expanduser()
    if storage is None and candidate.is_dir():
        return candidate.resolve()
    base = Path(storage or DEFAULT_STORAGE).expanduser()
    folder = base / name_or_path
    if folder.is_dir():
        return folder.resolve()
    where = f"in {base}" if storage else f"in {base}, and it is not a folder"
    raise OrchestratorError(f"no sweep {name_or_path!r} {where}")


def sweep_json_path(folder: Path) -> Path:
    return folder / schema.RESULTS_DIR / schema.SWEEP_FILE


def read_sweep_json(folder: Path) -> dict[str, Any]:
    """sweep.json of the sweep in `folder`, checked to hold a spec."""
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


def read_table(path: Path) -> pd.DataFrame | None:
    """A result table, or None when it was never written; a damaged file is an error
    that says how to recover (the rows can be rebuilt from Tune's trial folders)."""
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several kinds for damaged files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OrchestratorError(
            f"{path}: is not a readable Parquet file ({first}); move it aside and run the "
            "command again: the rows are rebuilt from Tune's trial folders"
        ) from None


def read_tables(folder: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    results = folder / schema.RESULTS_DIR
    return (read_table(results / schema.TRIALS_FILE),
            read_table(results / schema.HISTORY_FILE))
