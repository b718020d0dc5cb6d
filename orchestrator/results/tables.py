"""The two result tables as data frames, and their atomic Parquet writes (no Ray here)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.results import schema
from orchestrator.results.atomic import write_atomic


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def trials_frame(trials: dict[str, dict], metric: str) -> pd.DataFrame:
    fixed = schema.trial_columns(metric)
    frame = pd.DataFrame(list(trials.values()))
    configs = sorted(c for c in frame.columns if c.startswith(schema.CONFIG_PREFIX))
    frame = frame.reindex(columns=fixed[:3] + configs + fixed[3:])
    return frame.sort_values(schema.TRIAL_ID, kind="stable").reset_index(drop=True)


def history_frame(history: dict[tuple, dict]) -> pd.DataFrame:
    frame = pd.DataFrame(list(history.values()), columns=schema.HISTORY_COLUMNS)
    frame = frame.astype({"epoch": "int64"})
    return frame.sort_values(list(schema.HISTORY_KEY)).reset_index(drop=True)
