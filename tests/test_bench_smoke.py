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


def test_export_benchmark_runs_and_records(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bench.export", "--trials", "5", "--epochs",
                             "4", "--repeats", "1", "--out", str(tmp_path)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the pyarrow write" in result.stdout
    (record,) = tmp_path.glob("export-*.json")
    data = json.loads(record.read_text())
    assert set(data["median_s"]) == {"pyarrow", "export", "export+cli", "frame path"}
    assert data["args"]["trials"] * data["args"]["epochs"] == 20


def test_peers_benchmark_runs_and_records(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bench.peers", "--seeds", "0", "--trials",
                             "2", "--out", str(tmp_path)], cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "x Optuna" in result.stdout
    (record,) = tmp_path.glob("peers-*.json")
    data = json.loads(record.read_text())
    assert set(data["runs"]) == {"sweep", "sweep command", "optuna", "random"}
    for name in ("sweep", "optuna", "random"):
        (run,) = data["runs"][name]
        assert run["timeline"] and 0 < run["best"] <= 1


def test_scale_benchmark_runs_and_records(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bench.scale", "--sizes", "2", "3",
                             "--sink-trials", "3", "--sink-epochs", "2", "--out",
                             str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "overhead per trial at 3" in result.stdout
    (record,) = tmp_path.glob("scale-*.json")
    data = json.loads(record.read_text())
    assert [s["trials"] for s in data["sweeps"]] == [2, 3]
    assert {s["mode"] for s in data["sink"]} == {"history parts", "rewrite every write"}


def test_overhead_benchmark_runs_and_records(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bench.overhead", "--trials", "2",
                             "--epochs", "2", "--out", str(tmp_path)], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "against bare Ray Tune" in result.stdout
    (record,) = tmp_path.glob("overhead-*.json")
    rows = json.loads(record.read_text())["rows"]
    assert set(rows) == {"bare", "orchestrator/every", "orchestrator", "orchestrator+asha"}
    assert all(row["trials"] == 2 and row["work_s"] > 0 for row in rows.values())


def test_gpu_benchmark_logic_runs_without_a_gpu(tmp_path):
    # the packing benchmark proper needs a GPU (the device machine); --cpu runs its logic
    result = subprocess.run([sys.executable, "-m", "bench.gpu", "--cpu", "--trials", "2",
                             "--epochs", "1", "--packings", "1", "2", "--out", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (record,) = tmp_path.glob("gpu-*.json")
    rows = json.loads(record.read_text())["rows"]
    assert [row["per_gpu"] for row in rows] == [1, 2]
    assert all(row["trials"] == 2 and row["devices"] == ["cpu"] for row in rows)
