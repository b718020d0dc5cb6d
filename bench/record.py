"""The JSON record every benchmark writes to bench/results/: what ran, where, with what."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from orchestrator.results.provenance import versions

RESULTS = Path(__file__).resolve().parent / "results"


def write_record(benchmark: str, out: str | Path, args: Any, **numbers: Any) -> Path:
    """Write `<out>/<benchmark>-<time>.json` with the machine, the versions, the
    arguments and `numbers`; print and return its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": benchmark, "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "machine": {"host": platform.node(), "cpus": os.cpu_count(),
                          "processor": platform.processor()},
              "versions": versions(), "args": vars(args), **numbers}
    path = out / f"{benchmark}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"record: {path}")
    return path


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """A benchmark's argument parser: its docstring's first line, and --out for the record."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS), help="folder for the JSON record")
    return parser


def median_run(runs: list[dict]) -> dict:
    """Each number's median over repeated runs of one contender (same keys in each)."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}
