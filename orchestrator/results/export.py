"""`sweep export`: one result table to a file, atomically (temp file + rename)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from orchestrator.errors import OrchestratorError
from orchestrator.results import schema
from orchestrator.results.atomic import write_atomic
from orchestrator.results.tables import write_parquet_atomic

FORMATS = ("parquet", "csv", "jsonl")
TABLES = ("trials", "history")


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
        # 15 significant digits (pandas writes 10 by default): values survive the trip
        write_atomic(path, lambda tmp: frame.to_json(tmp, orient="records", lines=True,
                                                     double_precision=15))
    else:  # the CLI only lets FORMATS through
        raise OrchestratorError(f"--format: is {fmt!r}, but must be one of {', '.join(FORMATS)}")


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
