"""Trials of several workers with real Ray on the CPU (gloo): a Ray Train worker group
per trial, launched from the trial's Tune function. Tiny data, two epochs: what costs
is starting each group."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import ray
import yaml

from orchestrator.engine.run import run_sweep
from orchestrator.results import schema
from orchestrator.results.folder import read_history, read_trials
from orchestrator.spec.model import spec_from_mapping
from tests.faults import (
    ended_at_exit,
    kill_group,
    ray_cluster,
    reported_epochs,
    snapshotted_since,
    start_sweep,
    wait_for,
)
from tests.helpers import REPO, sweep_cli, tiny_spec, write_spec

pytestmark = pytest.mark.slow

# A 2-worker trial against a 1-worker one at the same global batch and seed: the same
# batches, the same mean gradient; only float sums in another order (DDP's all-reduce
# of the two halves' gradients, the validation sums of two shards) differ
RTOL = 1e-5


def ddp_spec(tmp_path, name: str, workers: int, **changes) -> dict:
    spec = tiny_spec(tmp_path, name=name, num_samples=1, search_space={},
                     resources={"workers": workers, "cpu": 1}, **changes)
    # 301 rows: 241 to train, so the last batch of 32 (17 rows) splits 9 + 8
    spec["train"].update(dataset={"name": "synthetic", "n_samples": 301, "n_features": 8},
                         epochs=2, checkpoint_every=1)
    return spec


def test_the_quickstart_with_two_workers_runs_an_asha_sweep_to_its_end(tmp_path, ray_address):
    """The quickstart's own spec (its digits MLP and its search space), made tiny: two
    trials of two epochs, each trial two workers."""
    spec = yaml.safe_load((REPO / "search_spaces" / "digits_mlp_asha.yaml").read_text())
    spec["train"]["epochs"] = 2
    # one group at a time on 2 CPUs: a stopped trial's group must free its workers for
    # the next (the budget ends the test should one not, rather than wait for ever)
    spec.update(name="ddp-asha", num_samples=2, storage=str(tmp_path / "sweeps"),
                resources={"workers": 2, "cpu": 1}, time_budget_s=600,
                scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2})
    outcome = run_sweep(spec_from_mapping(spec))
    trials, history = outcome.trials, outcome.history
    sweep_json = json.loads((outcome.results_dir / schema.SWEEP_FILE).read_text())
    assert sweep_json["budget_stopped"] == []
    assert len(trials) == 2 and outcome.errored == 0
    assert (trials["status"] == "terminated").all()
    assert (trials["workers"] == 2).all()
    assert set(trials["stop_reason"]) <= {"completed", "scheduler"}
    assert "completed" in set(trials["stop_reason"])
    assert not history.duplicated(list(schema.HISTORY_KEY)).any()
    # no worker group holds its CPUs after its trial (a leaked one made the next test
    # wait for ever)
    wait_for(lambda: not [g for g in ray.util.placement_group_table().values()
                          if g["state"] == "CREATED"], 30, "the groups' placement groups to go")
    # a completed trial's checkpoint is Tune's, as a one-worker trial's
    done = trials[trials["stop_reason"] == "completed"].iloc[0]["trial_id"]
    folder = outcome.experiment_dir / done
    assert {"meta.json", "state.pt"} <= {p.name for p in folder.glob("checkpoint_*/*")}


def test_two_workers_train_like_one_at_the_same_global_batch(tmp_path, ray_address):
    one = run_sweep(spec_from_mapping(ddp_spec(tmp_path / "1", "one", 1)))
    two = run_sweep(spec_from_mapping(ddp_spec(tmp_path / "2", "two", 2)))
    assert one.errored == two.errored == 0
    assert list(one.trials["workers"]) == [1] and list(two.trials["workers"]) == [2]
    a, b = (o.history.sort_values("epoch") for o in (one, two))
    assert list(a["epoch"]) == list(b["epoch"]) == [1, 2]
    for column in ("train_loss", "val_loss", "val_acc", "lr", "grad_norm"):
        np.testing.assert_allclose(b[column], a[column], rtol=RTOL, err_msg=column)
    # the training moved: equal curves are not two untrained models
    assert a["train_loss"].iloc[1] < a["train_loss"].iloc[0]


SPREAD_CHECK = """
import json, sys, ray
from ray.util.state import list_actors
ray.init(address=sys.argv[1], log_to_driver=False)
workers = list_actors(address=sys.argv[2], filters=[("class_name", "=", "RayTrainWorker")],
                      detail=True)
nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
print(json.dumps({"workers": [a.node_id for a in workers], "nodes": nodes}))
"""


def test_spread_puts_one_worker_on_each_node_of_two(tmp_path):
    # half a CPU per worker: packed, both would fit on one node of one CPU
    spec = ddp_spec(tmp_path, "ddp-spread", 2)
    spec["resources"].update(cpu=0.5, placement="spread")
    path = write_spec(tmp_path, spec)
    with ray_cluster(dashboard=True) as cluster:
        env = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_MODE"}
        run = sweep_cli("run", str(path), "--address", cluster.address, "--quiet", env=env)
        assert run.returncode == 0, run.stderr[-3000:]
        state = subprocess.run([sys.executable, "-c", SPREAD_CHECK, cluster.address,
                                cluster.dashboard],
                               capture_output=True, text=True, env=cluster.env, timeout=120)
    assert state.returncode == 0, state.stderr[-3000:]
    seen = json.loads(state.stdout.strip().splitlines()[-1])
    assert len(seen["workers"]) == 2, seen
    assert sorted(seen["workers"]) == sorted(seen["nodes"]), seen


def test_an_own_loop_trains_on_two_workers(tmp_path, ray_address):
    from orchestrator.spec.model import load_spec

    spec = load_spec(REPO / "examples" / "own_loop_ddp" / "spec.yaml", [
        f"storage={tmp_path / 'sweeps'}", "num_samples=1", "train.epochs=2",
        "scheduler={name: fifo}", "search_space={}"])
    outcome = run_sweep(spec)
    assert outcome.errored == 0, outcome.trials["error"].tolist()
    trials, history = outcome.trials, outcome.history
    assert list(trials["workers"]) == [2] and list(trials["stop_reason"]) == ["completed"]
    assert sorted(history["epoch"]) == [1, 2]
    assert history["val_acc"].iloc[-1] > 0.5  # it learned
    folder = outcome.experiment_dir / trials["trial_id"].iloc[0]
    assert list(folder.glob("checkpoint_*/loop_checkpoint.pt"))  # rank 0's, kept by Tune


def test_a_two_worker_sweep_killed_then_resumed_gives_the_rows_of_a_straight_run(
        tmp_path, ray_address):
    def spec(name: str) -> dict:
        spec = ddp_spec(tmp_path, name, 2)
        spec["train"].update(dataset={"name": "synthetic", "n_samples": 20000,
                                      "n_features": 20},
                             model={"name": "mlp", "hidden": 64, "depth": 2}, epochs=5,
                             early_stopping={"patience": None})
        return spec

    straight = run_sweep(spec_from_mapping(spec("straight"))).history
    path = write_spec(tmp_path, spec("killed"))
    results = tmp_path / "sweeps" / "killed" / schema.RESULTS_DIR
    sweep = results.parent

    def checkpointed_and_snapshotted(seen: list[float]) -> bool:
        """Two epochs reported, rank 0's checkpoint in the trial's folder, and a snapshot
        of Tune's state written since (else Tune's state may know no checkpoint yet, and
        the resumed group would rightly start from scratch)."""
        return snapshotted_since(sweep, reported_epochs(results) >= 2 and bool(
            list(sweep.glob("*/checkpoint_*/meta.json"))), seen)

    seen: list[float] = []
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "0.5"}  # Tune snapshots its state often
    # killed once rank 0 has checkpointed: the resumed group starts from it
    with ended_at_exit(start_sweep("run", str(path), "--address", ray_address,
                                   "--quiet", env=env)) as proc:
        wait_for(lambda: checkpointed_and_snapshotted(seen) or proc.poll() is not None, 240,
                 "two epochs of the 2-worker trial, checkpointed and snapshotted")
        assert proc.poll() is None, "the sweep ended before the kill"
        kill_group(proc)
        proc.wait(timeout=30)
    assert reported_epochs(results) < 5
    resumed = sweep_cli("resume", str(results.parent), "--address", ray_address)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    history = read_history(results).sort_values("epoch").reset_index(drop=True)
    trials = read_trials(results)
    assert list(trials["stop_reason"]) == ["completed"] and list(trials["workers"]) == [2]
    assert list(history["epoch"]) == [1, 2, 3, 4, 5]
    # the resumed group went on from rank 0's checkpoint, every rank loading it
    folder = results.parent / trials["trial_id"].iloc[0]
    rows = [json.loads(line) for line in (folder / "result.json").read_text().splitlines()]
    resumed = [r for r in rows if r["restored_from_epoch"]]
    assert resumed and resumed[0]["restored_from_epoch"] >= 1
    assert resumed[0]["epoch"] == resumed[0]["restored_from_epoch"] + 1
    columns = ["epoch", "train_loss", "val_loss", "val_acc", "lr", "grad_norm"]
    np.testing.assert_array_equal(history[columns].to_numpy(),
                                  straight.sort_values("epoch")[columns].to_numpy())
