"""A node dies mid-sweep: its trials move to the remaining node and continue from
their checkpoints. A real two-node Ray cluster on this machine (a head and a worker
node with its own temp folder, token auth), started and ended by the test."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.results import schema
from tests.faults import ended_at_exit, ray_cluster, start_sweep, wait_for
from tests.helpers import tiny_spec, write_spec

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
