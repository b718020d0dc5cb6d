"""Benchmarks are not tests (no timing is asserted); a tiny run of each proves it runs
(a subprocess that starts Ray: slow)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO


def run_bench(name: str, tmp_path: Path, *args: str, says: str) -> dict:
    """Run `python -m bench.NAME ARGS --out tmp_path`; check it exits 0 and prints
    `says`; return its one JSON record, checked to say where and with what it ran."""
    result = subprocess.run([sys.executable, "-m", f"bench.{name}", *args, "--out",
                             str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert says in result.stdout
    (record,) = tmp_path.glob(f"{name}-*.json")
    data = json.loads(record.read_text())
    assert data["benchmark"] == name
    assert data["versions"]["ray"] and data["machine"]["cpus"]
    return data


@pytest.mark.slow
def test_asha_benchmark_runs_and_records(tmp_path):
    data = run_bench("asha", tmp_path, "--samples", "3", "--epochs", "3", says="ASHA ran")
    assert [row["scheduler"] for row in data["rows"]] == ["fifo", "asha"]
    assert data["rows"][1]["epochs_run"] <= data["rows"][0]["epochs_run"]


@pytest.mark.slow
def test_export_benchmark_runs_and_records(tmp_path):
    data = run_bench("export", tmp_path, "--trials", "5", "--epochs", "4", "--repeats", "1",
                     says="the pyarrow write")
    assert set(data["median_s"]) == {"pyarrow", "export", "export+cli", "frame path"}
    assert data["args"]["trials"] * data["args"]["epochs"] == 20


@pytest.mark.slow
def test_peers_benchmark_runs_and_records(tmp_path):
    data = run_bench("peers", tmp_path, "--seeds", "0", "--trials", "2", says="x Optuna")
    assert set(data["runs"]) == {"sweep", "sweep command", "optuna", "random"}
    for name in ("sweep", "optuna", "random"):
        (run,) = data["runs"][name]
        assert run["timeline"] and 0 < run["best"] <= 1


@pytest.mark.slow
def test_scale_benchmark_runs_and_records(tmp_path):
    data = run_bench("scale", tmp_path, "--sizes", "2", "3", "--sink-trials", "3",
                     "--sink-epochs", "2", "--repeats", "1", says="overhead per trial at 3")
    assert [s["trials"] for s in data["sweeps"]] == [2, 3]
    assert {s["mode"] for s in data["sink"]} == {"parts", "rewrite every write"}


@pytest.mark.slow
def test_overhead_benchmark_runs_and_records(tmp_path):
    # two of the five variants (each starts a Ray of its own): bare Ray Tune and ours under
    # ASHA, the other three being ours with other settings
    data = run_bench("overhead", tmp_path, "--trials", "2", "--epochs", "2", "--repeats", "1",
                     "--variants", "bare", "orchestrator+asha", says="wall/ideal")
    rows = data["rows"]
    assert set(rows) == {"bare", "orchestrator+asha"}
    assert all(row["trials"] == 2 and row["work_s"] > 0 and row["driver_cpu_s"] > 0
               for row in rows.values())
    assert all(len(runs) == 1 for runs in data["runs"].values())


@pytest.mark.slow
def test_gpu_benchmark_logic_runs_without_a_gpu(tmp_path):
    # the packing benchmark proper needs a GPU (the device machine); --cpu runs its logic
    data = run_bench("gpu", tmp_path, "--cpu", "--trials", "2", "--epochs", "1",
                     "--packings", "2", says="per GPU")
    rows = data["rows"]
    assert [row["per_gpu"] for row in rows] == [2]
    assert all(row["trials"] == 2 and row["devices"] == ["cpu"] for row in rows)


def test_device_wheels_drops_unused_parts_and_their_record_lines(tmp_path):
    from bench.device_wheels import without

    wheel = tmp_path / "ray-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("ray/tune/__init__.py", "tune = 1\n")
        z.writestr("ray/rllib/algo.py", "x = 1\n")
        z.writestr("ray-0.dist-info/RECORD", "ray/tune/__init__.py,sha256=a,9\n"
                   "ray/rllib/algo.py,sha256=b,6\nray-0.dist-info/RECORD,,\n")
    without(wheel, ("ray/rllib/",))
    with zipfile.ZipFile(wheel) as z:
        assert z.namelist() == ["ray/tune/__init__.py", "ray-0.dist-info/RECORD"]
        assert z.read("ray/tune/__init__.py") == b"tune = 1\n"
        assert z.read("ray-0.dist-info/RECORD").decode().splitlines() == [
            "ray/tune/__init__.py,sha256=a,9", "ray-0.dist-info/RECORD,,"]


@pytest.mark.slow
def test_tracking_benchmark_runs_and_records(tmp_path):
    data = run_bench("tracking", tmp_path, "--trials", "2", "--epochs", "3",
                     says="ms per epoch")
    assert set(data["rows"]) == {"tensorboard", "mlflow", "mlflow live (loop)",
                                 "mlflow live (sender)", "mlflow replay"}
    assert all(row["seconds"] > 0 for row in data["rows"].values())


@pytest.mark.slow
def test_gpu_oom_benchmark_logic_runs_without_a_gpu(tmp_path):
    # the real out-of-memory case needs a GPU; --cpu runs its logic with a stand-in model
    data = run_bench("gpu_oom", tmp_path, "--cpu", says="as expected")
    assert data["problems"] == []
    rows = {row["config.batch_size"]: row for row in data["rows"]}
    assert rows[512]["oom_halvings"] == 3 and rows[512]["batch_size_used"] == 64
    assert rows[64]["oom_halvings"] == 0


@pytest.mark.slow
def test_trainable_signals_benchmark_runs_and_records(tmp_path):
    data = run_bench("trainable", tmp_path, "--signals", "--epochs", "2", "--repeats", "1",
                     says="sampled")
    assert data["args"]["signals"] and data["every"] == 16
    for depth in ("depth2", "depth8"):
        for kind in ("wall", "cpu"):
            row = data[depth][kind]
            assert row["epoch_without_s"] > 0
            assert row["projected"] == row["every_step_over_without"] / 16


@pytest.mark.slow
def test_ddp_benchmark_runs_and_records(tmp_path):
    data = run_bench("ddp", tmp_path, "--epochs", "1", "--rows", "400", "--hidden", "16",
                     "--depth", "1", "--batch-size", "64", says="the epoch throughput of one")
    assert [row["workers"] for row in data["rows"]] == [1, 2]


@pytest.mark.slow
def test_refine_benchmark_runs_and_records(tmp_path):
    data = run_bench("refine", tmp_path, "--tasks", "synthetic-wide-lr", "--seeds", "0",
                     "--n", "2", "--epochs", "2", says="fewer epochs to the one-shot's best")
    (run,) = data["runs"]
    assert run["task"] == "synthetic-wide-lr" and run["metric"] == "val_acc"
    for arm in ("one-shot", "refine", "optuna"):
        assert 0 < run[arm]["best"] <= 1 and run[arm]["epochs"] > 0
    assert run["one-shot"]["best"] == run["target"] and run["one-shot"]["to_target"] >= 1
    assert set(data["table"]["synthetic-wide-lr"]) >= {"one-shot", "refine", "optuna"}
