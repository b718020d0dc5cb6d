"""Benchmarks are not tests (no timing is asserted); a tiny run of each proves it runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.ray


def test_asha_benchmark_runs_and_records(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bench.asha", "--samples", "3", "--epochs",
                             "3", "--out", str(tmp_path)], cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ASHA ran" in result.stdout
    (record,) = tmp_path.glob("asha-*.json")
    data = json.loads(record.read_text())
    assert [row["scheduler"] for row in data["rows"]] == ["fifo", "asha"]
    assert data["rows"][1]["epochs_run"] <= data["rows"][0]["epochs_run"]
    assert data["versions"]["ray"] and data["machine"]["cpus"]
