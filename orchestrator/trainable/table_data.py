"""The `table` data set read and checked without torch: the trial reads its table
through here, and the driver checks every table a spec names through here before Ray
starts, so that bad data is one line naming the `train.dataset.*` key (exit 2), not a
worker's traceback, nor a sweep of trials "diverged" on NaN features."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestrator.errors import OrchestratorError

# rows each split must keep: fewer cannot be trained on or judged
MIN_ROWS_PER_SPLIT = 5


@dataclass
class Table:
    features: np.ndarray  # (rows, numeric feature columns), float64, finite
    labels: np.ndarray  # class indices, or float targets for a regression
    num_outputs: int  # classes, or 1


def _first_bad(values: np.ndarray) -> int:
    return int(np.argwhere(~np.isfinite(values))[0][0])


def read_table(path_text: str | None, label: str, val_fraction: float,
               task: str = "classification") -> Table:
    """The table at `path_text`, checked: one OrchestratorError line for the first
    problem, naming the key and the first bad row or column."""
    import pandas as pd

    path = Path(path_text or "")
    if not path.is_file():
        raise OrchestratorError(f"train.dataset.path: {path} is not a file")
    if path.suffix not in (".parquet", ".csv"):
        raise OrchestratorError(f"train.dataset.path: {path} must end in .parquet or .csv")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pandas and pyarrow raise many kinds for unreadable files
        from orchestrator.errors import first_line

        raise OrchestratorError(f"train.dataset.path: {path} cannot be read as "
                                f"{path.suffix[1:]} ({first_line(exc)})") from None
    if label not in frame.columns:
        raise OrchestratorError(
            f"train.dataset.label: column {label!r} is not in {path} "
            f"(columns: {', '.join(map(str, frame.columns))})")
    n_val = max(1, int(round(len(frame) * val_fraction)))
    if min(n_val, len(frame) - n_val) < MIN_ROWS_PER_SPLIT:
        raise OrchestratorError(
            f"train.dataset.path: {path} has {len(frame)} rows: with val_fraction "
            f"{val_fraction:g} a split keeps fewer than {MIN_ROWS_PER_SPLIT}")
    column = frame.pop(label)
    if column.isna().any():
        raise OrchestratorError(f"train.dataset.label: column {label!r} of {path} is empty "
                                f"at row {int(np.flatnonzero(column.isna())[0])}")
    features = frame.select_dtypes("number")
    if features.shape[1] == 0:
        raise OrchestratorError(f"train.dataset.path: {path} has no numeric feature columns")
    x = features.to_numpy(dtype=np.float64)
    if not np.isfinite(x).all():
        row, col = np.argwhere(~np.isfinite(x))[0]
        raise OrchestratorError(
            f"train.dataset.path: {path}: feature column {features.columns[col]!r} holds "
            f"{x[row, col]} at row {int(row)}; features must be finite numbers")
    if task == "regression":
        try:
            y = column.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise OrchestratorError(f"train.dataset.label: column {label!r} of {path} is not "
                                    "numeric, as a regression's target must be") from None
        if not np.isfinite(y).all():
            raise OrchestratorError(f"train.dataset.label: column {label!r} of {path} holds "
                                    f"{y[_first_bad(y)]} at row {_first_bad(y)}")
        return Table(x, y, 1)
    codes, classes = pd.factorize(column, sort=True)
    if len(classes) < 2:
        raise OrchestratorError(f"train.dataset.label: column {label!r} of {path} holds one "
                                f"class ({classes[0]}); a classification needs two or more")
    return Table(x, codes, len(classes))


def table_paths(spec) -> list[str]:
    """Every table a spec's built-in `table` data set names, fixed or searched."""
    dataset = getattr(spec.train, "dataset", None)
    if getattr(dataset, "name", None) != "table":
        return []
    searched = spec.search_space.get("dataset.path")
    return [str(v) for v in searched.args] if searched else [dataset.path]


def check_tables(spec) -> None:
    """Read and check each table the spec names, in the driver, before Ray starts."""
    for path in table_paths(spec):
        dataset = spec.train.dataset
        read_table(path, dataset.label, dataset.val_fraction, spec.train.task)
