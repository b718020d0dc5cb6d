"""Sweep results: schema, rows, tables, provenance and rebuild (the live sink, a Ray
Tune callback, is `orchestrator.results.sink`; importing this package needs no Ray)."""

from orchestrator.results import schema
from orchestrator.results.rebuild import rebuild_tables

__all__ = ["rebuild_tables", "schema"]
