"""A node dies mid-sweep: its trials move to the remaining node and continue from
their checkpoints. A real two-node Ray cluster on this machine (a head and a worker
node with its own temp folder, token auth), started and ended by the test. The GCS
dies (the embedded one, or a joined cluster's head): the sweep ends in one line, and
resumes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.results import schema
from tests.faults import (
    alive,
    descendants,
    ended_at_exit,
    named,
    ray_cluster,
    reported_epochs,
    start_sweep,
    wait_for,
)
from tests.helpers import (
    SLOW_EPOCHS,
    SLOW_TRIALS,
    slow_spec,
    sweep_cli,
    tiny_spec,
    write_spec,
)

pytestmark = pytest.mark.slow

EPOCHS = 12


@pytest.fixture
def two_nodes():
    with ray_cluster() as cluster:
        yield cluster.address, cluster.head, cluster.worker, cluster.env


def reports(experiment: Path) -> list[dict]:
    """Every result Tune wrote so far, from the trial folders."""
    rows = []
    for path in experiment.glob("*/result.json"):
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line being written
    return rows


def test_trials_of_a_lost_node_resume_on_the_other_from_checkpoints(tmp_path, two_nodes):
    address, head, worker, env = two_nodes
    spec = tiny_spec(tmp_path, name="nodeloss", num_samples=4, max_concurrent_trials=2,
                     failure={"max_failures": 3})
    spec["train"].update(dataset={"name": "synthetic", "n_samples": 20000, "n_features": 20},
                         model={"name": "mlp", "hidden": 64, "depth": 2}, epochs=EPOCHS,
                         batch_size=64, early_stopping={"patience": None},
                         checkpoint_every=1)  # the restore from checkpoints is the point
    path = write_spec(tmp_path, spec)
    experiment = tmp_path / "sweeps" / "nodeloss"
    worker_pids = set()

    def worker_trial_with_checkpoint():
        if proc.poll() is not None:
            return ["ended"]  # the sweep ended first: the assertion below says so
        worker_pids.update(worker.pids())
        on_worker = [r for r in reports(experiment) if r.get("pid") in worker_pids]
        return [r["trial_id"] for r in on_worker if r["epoch"] >= 2]

    # the driver carries only the token, as Ray documents it (RAY_AUTH_TOKEN): Ray turns
    # token auth on by itself when it joins
    driver_env = {k: v for k, v in env.items() if k != "RAY_AUTH_MODE"}
    with ended_at_exit(start_sweep("run", str(path), "--address", address, "--quiet",
                                   env=driver_env)) as proc:
        moved = wait_for(worker_trial_with_checkpoint, 180, "a trial on the worker node to "
                         "checkpoint")
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        killed_at = max(r["epoch"] for r in reports(experiment) if r["trial_id"] == moved[0])
        os.kill(worker.raylet_pid(), signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]

    trials = pd.read_parquet(experiment / "results" / schema.TRIALS_FILE)
    history = pd.read_parquet(experiment / "results" / schema.HISTORY_FILE)
    assert len(trials) == 4 and (trials[schema.STOP_REASON] == "completed").all()
    assert not history.duplicated(list(schema.HISTORY_KEY)).any()
    for _, epochs in history.groupby(schema.TRIAL_ID)["epoch"]:
        assert sorted(epochs) == list(range(1, EPOCHS + 1))  # no gap, no repeat

    rows = reports(experiment)
    assert {r["pid"] for r in rows} & worker_pids, "no trial ran on the worker node"
    assert {r["pid"] for r in rows} - worker_pids, "no trial ran on the head node"
    after = [r for r in rows if r["trial_id"] == moved[0] and r["pid"] not in worker_pids]
    assert after, "the moved trial did not continue elsewhere"
    # it continued from a checkpoint, not from epoch 1
    assert min(r["restored_from_epoch"] for r in after) >= 1
    assert min(r["epoch"] for r in after) > 1 and killed_at >= 2


def complete(results: Path, trials: int, epochs: int) -> None:
    """Every trial once and ended; every epoch of every trial once, no gap."""
    table = pd.read_parquet(results / schema.TRIALS_FILE)
    history = pd.read_parquet(results / schema.HISTORY_FILE)
    assert len(table) == trials and (table[schema.STOP_REASON] == "completed").all()
    assert not history.duplicated(list(schema.HISTORY_KEY)).any()
    for _, seen in history.groupby(schema.TRIAL_ID)["epoch"]:
        assert sorted(seen) == list(range(1, epochs + 1))


def assert_stopped_for_the_lost_gcs(proc, err: str, results: Path) -> None:
    """One line and exit 3 within seconds (engine/gcs_watch.py), where Ray's client waited
    60 s and ended the driver with exit 1 and sweep.json `running`."""
    assert proc.returncode == 3, err[-3000:]
    assert "Failed to connect to GCS" not in err and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if "stopped answering" in line]
    assert line.startswith("error: Ray's GCS at ")
    assert f"continue it with `sweep resume {results.parent}`" in line
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["status"] == "interrupted"
    assert sweep["segments"][-1]["reason"].startswith("ray: Ray's GCS at ")


def test_a_lost_embedded_gcs_ends_the_sweep_in_one_line_and_it_resumes(tmp_path,
                                                                       ray_address):
    path = write_spec(tmp_path, slow_spec(tmp_path, "gcs-lost"))
    results = tmp_path / "sweeps" / "gcs-lost" / schema.RESULTS_DIR
    with ended_at_exit(start_sweep("run", str(path), "--quiet")) as proc:  # embedded Ray
        wait_for(lambda: reported_epochs(results) >= 2 or proc.poll() is not None, 240,
                 "two epochs reported")
        assert proc.poll() is None, "the sweep ended before the kill"
        ray_processes = descendants(proc.pid)
        (gcs,) = named(ray_processes, "gcs_server")
        os.kill(gcs, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    assert_stopped_for_the_lost_gcs(proc, err, results)
    # the driver ended the Ray it started (its agents would wait a minute for the GCS)
    wait_for(lambda: not alive(ray_processes), 30, "the embedded Ray's processes to end")

    resumed = sweep_cli("resume", str(results.parent), "--address", ray_address, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    complete(results, SLOW_TRIALS, SLOW_EPOCHS)


def test_a_lost_head_node_ends_a_joined_sweep_in_one_line_and_it_resumes(tmp_path,
                                                                         two_nodes,
                                                                         ray_address):
    address, head, _, env = two_nodes
    path = write_spec(tmp_path, slow_spec(tmp_path, "head-lost"))
    results = tmp_path / "sweeps" / "head-lost" / schema.RESULTS_DIR
    with ended_at_exit(start_sweep("run", str(path), "--address", address, "--quiet",
                                   env=env)) as proc:
        wait_for(lambda: reported_epochs(results) >= 2 or proc.poll() is not None, 240,
                 "two epochs reported")
        assert proc.poll() is None, "the sweep ended before the kill"
        head.stop()  # the head's GCS, raylet and workers, at once
        _, err = proc.communicate(timeout=120)
    assert_stopped_for_the_lost_gcs(proc, err, results)

    resumed = sweep_cli("resume", str(results.parent), "--address", ray_address, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    complete(results, SLOW_TRIALS, SLOW_EPOCHS)


def test_a_cluster_started_by_hand_cannot_grow_so_a_trial_it_cannot_hold_is_refused(
        tmp_path, two_nodes):
    """`ray start` runs Ray's autoscaler read-only (its node types mirror the live nodes):
    no node will come that holds the trial, so it is one line and exit 2, not a warning."""
    import subprocess
    import sys

    address, _, _, env = two_nodes
    probe = ("import sys, time, ray\n"
             "from ray.experimental.internal_kv import _internal_kv_get\n"
             "from orchestrator.engine.tune_compat import autoscaler\n"
             "ray.init(address=sys.argv[1], logging_level='ERROR')\n"
             "deadline = time.monotonic() + 90\n"
             # its first status may list no node yet (read as 'cannot tell'): wait for one
             # that does, as a sweep started a little later would see
             "answer = autoscaler()\n"
             "while (answer is not None and answer.startswith('an autoscaler')\n"
             "       and time.monotonic() < deadline):\n"
             "    time.sleep(1)\n"
             "    answer = autoscaler()\n"
             "print(bool(_internal_kv_get('__autoscaling_status')), answer)\n")
    seen = subprocess.run([sys.executable, "-c", probe, address], env=env, capture_output=True,
                          text=True, timeout=180)
    assert seen.stdout.split() == ["True", "None"], seen.stderr[-3000:]

    path = write_spec(tmp_path, tiny_spec(tmp_path, name="huge"))
    result = sweep_cli("run", str(path), "--address", address, "--set", "resources.cpu=2",
                       "--quiet", env=env)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip() == ("error: resources.cpu: a trial asks for 2 CPU, but the "
                                     "largest node of this Ray has 1; lower resources.cpu")
