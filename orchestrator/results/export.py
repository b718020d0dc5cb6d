"""`sweep export`: one result table to a file, atomically (temp file + rename)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from orchestrator.errors import OrchestratorError
from orchestrator.results import schema
from orchestrator.results.atomic import write_atomic
from orchestrator.results.folder import parts_of, read_sweep_json, sweep_json_path
from orchestrator.results.storage import Location
from orchestrator.results.tables import write_parquet_atomic
from orchestrator.states import SweepStatus

FORMATS = schema.EXPORT_FORMATS


def format_of(path: Path, given: str | None) -> str:
    """The format asked for, else the one the file name says."""
    if given:
        return given
    suffix = path.suffix.lstrip(".").lower()
    if suffix in FORMATS:
        return suffix
    raise OrchestratorError(f"-o: {path} does not end in .parquet, .csv or .jsonl; "
                            "say which with --format")


def export_table(frame: pd.DataFrame, path: Path, fmt: str, declared=None) -> None:
    """Write `frame` to `path` in `fmt`; Parquet keeps the declared Arrow schema."""
    if fmt == "parquet":
        write_parquet_atomic(frame, path, declared)
    elif fmt == "csv":
        write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))
    elif fmt == "jsonl":
        write_atomic(path, lambda tmp: _write_json_lines(frame, tmp))
    else:  # the CLI only lets FORMATS through
        raise OrchestratorError(f"--format: is {fmt!r}, but must be one of {', '.join(FORMATS)}")


def _write_json_lines(frame: pd.DataFrame, path) -> None:
    """One JSON object a row, every float as Python writes it: the shortest text that
    reads back to the same double. (pandas' `to_json` keeps at most 15 decimal places:
    an update ratio of 1.234567e-9 came back as 1.235e-9, a gradient ratio of 1e-17 as
    0.) NaN and infinities are null, as pandas wrote them. Built a column at a time."""
    columns = [[f"{json.dumps(str(name))}:{text}" for text in _json_texts(frame[name])]
               for name in frame.columns]
    with open(path, "w", encoding="utf-8") as out:
        out.writelines("{" + ",".join(row) + "}\n" for row in zip(*columns))


def _json_texts(column: pd.Series) -> list[str]:
    """A column's values as JSON texts."""
    if pd.api.types.is_float_dtype(column):
        return [repr(v) if math.isfinite(v) else "null" for v in column.tolist()]
    if pd.api.types.is_bool_dtype(column):
        return ["true" if v else "false" for v in column.tolist()]
    if pd.api.types.is_integer_dtype(column):
        return [str(v) for v in column.tolist()]
    return ["null" if v is None or (isinstance(v, float) and not math.isfinite(v))
            else json.dumps(v, default=str) for v in column.astype(object).tolist()]


def copy_parquet(source, path: Path, declared) -> int | None:
    """Parquet to Parquet without pandas. A stored file of exactly the declared schema is
    copied as it is (its bytes are a valid export); one whose types differ is cast and
    written. Returns the rows, or None when the stored columns are not the declared ones
    (an older sweep): the caller then goes through the data frame. Atomic either way."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    data = source.read_bytes()
    metadata = pq.read_metadata(io.BytesIO(data))
    stored = metadata.schema.to_arrow_schema()
    if stored.names != declared.names:
        return None
    if stored.equals(declared):
        write_atomic(path, lambda tmp: tmp.write_bytes(data))
        return metadata.num_rows
    try:
        table = pq.read_table(io.BytesIO(data)).cast(declared)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))
    return table.num_rows


def declared_schema(table: str, metric: str):
    return schema.trials_schema(metric) if table == "trials" else schema.history_schema()


@dataclass(frozen=True)
class Exported:
    rows: int
    fmt: str
    rebuilt: tuple[str, ...] = ()  # tables completed from Tune's trial folders
    warning: str | None = None  # sweep.json is missing (`load.read_sweep`)


def export_sweep(folder: Location, path: Path, table: str, fmt: str | None) -> Exported:
    """Write the sweep's `table` (trials or history) to `path` in `fmt` (else the one its
    suffix names). A sweep that wrote its tables whole is copied Arrow to Arrow, with no
    data frame in between; otherwise the rows are read (and rebuilt where the sweep did
    not finish writing them)."""
    from orchestrator.results.load import load_sweep

    fmt = format_of(path, fmt)
    results = folder / schema.RESULTS_DIR
    if not sweep_json_path(folder).is_file():  # moved aside: the tables tell what they can
        tables = load_sweep(folder)
        frame = tables.trials if table == "trials" else tables.history
        export_table(frame, path, fmt, declared_schema(table, tables.metric))
        return Exported(len(frame), fmt, tuple(tables.rebuilt), tables.warning)
    sweep = read_sweep_json(folder)
    file, parts_dir = ((schema.TRIALS_FILE, schema.TRIALS_PARTS_DIR) if table == "trials"
                       else (schema.HISTORY_FILE, schema.HISTORY_PARTS_DIR))
    stored = results / file
    if (fmt == "parquet" and sweep.get("status") != SweepStatus.RUNNING and stored.is_file()
            and not parts_of(results / parts_dir)):
        rows = copy_parquet(stored, path, declared_schema(table, sweep["spec"]["metric"]))
        if rows is not None:
            return Exported(rows, fmt)
    tables = load_sweep(folder)
    frame = tables.trials if table == "trials" else tables.history
    export_table(frame, path, fmt, declared_schema(table, tables.metric))
    return Exported(len(frame), fmt, tuple(tables.rebuilt))
