"""The best trials of a sweep, as a frame, a rich table (terminal) or HTML (report).
No Ray here: `sweep report` uses it on files."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from rich.table import Table

from orchestrator.results import schema


def fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def leaderboard_frame(trials: pd.DataFrame, searched: list[str], metric: str, mode: str,
                      top: int = 10) -> pd.DataFrame:
    """The `top` trials by their best epoch's metric, with the searched settings, as
    display strings (columns named as users write the settings)."""
    best = schema.best_column(metric)
    ranked = trials.dropna(subset=[best]).sort_values(best, ascending=mode == "min").head(top)
    columns = [schema.TRIAL_ID, best, "best_epoch", *[f"{schema.CONFIG_PREFIX}{k}" for k in
                                                     searched],
               "effective_lr", schema.STOP_REASON, "diagnosis"]
    cells = {}
    for column in columns:
        values = ranked[column] if column in ranked else pd.Series([None] * len(ranked))
        cells[column.removeprefix(schema.CONFIG_PREFIX)] = [
            fmt(json.loads(v) if isinstance(v, str) and v.startswith("[") else v)
            for v in values]
    return pd.DataFrame(cells)


def leaderboard(trials: pd.DataFrame, searched: list[str], metric: str, mode: str,
                top: int = 10) -> Table:
    """The leaderboard as a rich table."""
    frame = leaderboard_frame(trials, searched, metric, mode, top)
    best = schema.best_column(metric)
    table = Table(title=f"Top {len(frame)} of {len(trials)} trials by {best}")
    for column in frame.columns:
        table.add_column(column, justify="left" if column == schema.TRIAL_ID else "right")
    for row in frame.itertuples(index=False):
        table.add_row(*row)
    return table
