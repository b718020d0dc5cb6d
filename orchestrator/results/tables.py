"""The two result tables as data frames, and their atomic Parquet writes with the
declared Arrow schema (no Ray here)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.results import schema
from orchestrator.results.rows import best_of
from orchestrator.results.storage import as_location


def to_arrow(frame: pd.DataFrame, declared: pa.Schema) -> pa.Table:
    """`frame` with the declared types; columns it lacks are null, extra ones keep the
    types of their values. A value the declared type cannot hold (a trial that failed
    on an invalid setting) falls back to the value's own type for that write."""
    columns = [f.name for f in declared] + [c for c in frame.columns if c not in declared.names]
    frame = frame.reindex(columns=columns)
    fields = [declared.field(c) if c in declared.names else
              pa.field(c, pa.Table.from_pandas(frame[[c]], preserve_index=False).schema[0].type)
              for c in columns]
    try:
        return pa.Table.from_pandas(frame, schema=pa.schema(fields), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.Table.from_pandas(frame, preserve_index=False)


def arrow_from_rows(rows: list[dict], declared: pa.Schema) -> pa.Table:
    """The table `to_arrow(pd.DataFrame(rows), declared)` makes, built from the rows
    without pandas (its per-column set-up costs milliseconds a write, whatever the rows):
    the sink writes after every few results. NaN is null, as pandas writes it."""
    names = set(declared.names)  # a list built anew at each access: once, as a set
    if any(not names.issuperset(row) for row in rows):
        return to_arrow(pd.DataFrame(rows), declared)  # undeclared columns: rare, typed so
    try:
        arrays = [pa.array([row.get(f.name) for row in rows], type=f.type, from_pandas=True)
                  for f in declared]
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return to_arrow(pd.DataFrame(rows), declared)  # a value the type cannot hold
    return pa.Table.from_arrays(arrays, schema=declared)


def write_arrow_atomic(table: pa.Table, path) -> None:
    """Write `table` to a local path or a storage Location, whole or not at all."""
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    as_location(path).write_bytes(buffer.getvalue().to_pybytes())


def write_parquet_atomic(frame: pd.DataFrame, path, declared: pa.Schema | None = None) -> None:
    """Write `frame` to a local path or a storage Location, whole or not at all."""
    write_arrow_atomic(to_arrow(frame, declared) if declared is not None
                       else pa.Table.from_pandas(frame, preserve_index=False), path)


def write_trial_rows(trials: dict[str, dict], path, metric: str) -> None:
    """trials.parquet from the sink's rows (sorted by trial id), without pandas."""
    rows = [trials[t] for t in sorted(trials)]
    write_arrow_atomic(arrow_from_rows(rows, schema.trials_schema(metric)), path)


def write_history_rows(history: dict[tuple, dict], path) -> None:
    """History rows (sorted by trial id, epoch) to `path`, without pandas."""
    rows = [history[key] for key in sorted(history)]
    write_arrow_atomic(arrow_from_rows(rows, schema.history_schema()), path)


def write_trials(frame: pd.DataFrame, path, metric: str) -> None:
    write_parquet_atomic(frame, path, schema.trials_schema(metric))


def write_history(frame: pd.DataFrame, path) -> None:
    write_parquet_atomic(frame, path, schema.history_schema())


def _as_read_back(frame: pd.DataFrame, declared: pa.Schema) -> pd.DataFrame:
    """The frame as pandas reads it back from the Parquet file: one representation for
    the live tables, the files, rebuilt and exported tables."""
    return to_arrow(frame, declared).to_pandas()


def _trial_rows(trials: dict[str, dict]) -> pd.DataFrame:
    frame = pd.DataFrame(list(trials.values()), columns=[schema.TRIAL_ID] if not trials else None)
    return frame.sort_values(schema.TRIAL_ID, kind="stable").reset_index(drop=True)


def history_frame(history: dict[tuple, dict]) -> pd.DataFrame:
    # a user's loop's own metrics follow the declared columns
    extra = sorted({k for row in history.values() for k in row} - set(schema.HISTORY_COLUMNS))
    frame = pd.DataFrame(list(history.values()), columns=[*schema.HISTORY_COLUMNS, *extra])
    frame = frame.sort_values(list(schema.HISTORY_KEY)).reset_index(drop=True)
    return _as_read_back(frame, schema.history_schema())


def frames(trials: dict[str, dict], history: dict[tuple, dict], metric: str,
           mode: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables from their rows, each trial's best values taken from its own history
    rows (`rows.best_of`), also for rows written before their last epochs were known."""
    by_trial: dict[str, list[dict]] = {}
    for key in sorted(history):
        by_trial.setdefault(key[0], []).append(history[key])
    trials = {t: {**row, **best_of(by_trial.get(t, []), metric, mode)}
              for t, row in trials.items()}
    return (_as_read_back(_trial_rows(trials), schema.trials_schema(metric)),
            history_frame(history))


def diagnosed(trials: pd.DataFrame, history: pd.DataFrame, metric: str,
              mode: str) -> pd.DataFrame:
    """`trials` with `diagnosis` and `diagnosis_reason` made again from the history rows
    by today's rules: a sweep written by an older version reads like a new one."""
    from orchestrator.results.rows import diagnosis_of

    if not len(trials) or not len(history):
        return trials
    by_trial = {t: rows.to_dict("records") for t, rows in history.groupby(schema.TRIAL_ID)}
    found = [diagnosis_of(by_trial.get(row[schema.TRIAL_ID], []), row, metric, mode,
                          own_loop=isinstance(row.get(f"{schema.CONFIG_PREFIX}function"),
                                              str))
             for row in trials.to_dict("records")]
    return trials.assign(diagnosis=[label for label, _ in found],
                         diagnosis_reason=[reason for _, reason in found])
