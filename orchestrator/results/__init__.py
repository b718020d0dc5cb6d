"""Sweep results: schema, the incremental Parquet sink, provenance and rebuild."""

from orchestrator.results import schema
from orchestrator.results.rebuild import rebuild_tables
from orchestrator.results.sink import ResultsSink

__all__ = ["ResultsSink", "rebuild_tables", "schema"]
