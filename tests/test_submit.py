"""`sweep submit` through the Ray Jobs API of a real two-node cluster on this machine
(a head with its dashboard on 127.0.0.1, a worker node with its own temp folder, token
auth): a sweep with a local data file, a graceful stop and a resume; the refusals; and
cluster.yaml against Ray's own cluster-config schema."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from orchestrator.results import schema
from tests.faults import ended_trials, ray_cluster, wait_for
from tests.helpers import REPO, SWEEP, invoke, tiny_spec, write_spec


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster(dashboard=True) as running:
        yield running


def client_env(cluster) -> dict:
    """A user's shell: the cluster's token, no RAY_AUTH_MODE (Ray's client finds it)."""
    return {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_MODE"}


def sweep(cluster, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([SWEEP, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env=client_env(cluster))


@pytest.mark.slow
def test_submit_wait_runs_on_both_nodes_and_reads_a_local_table(cluster, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20000, 4))  # trials of ~1 s: two run at once, one per node
    data = tmp_path / "client-only" / "table.csv"
    data.parent.mkdir()
    pd.DataFrame(x, columns=list("abcd")).assign(label=(x[:, 0] + x[:, 1] > 0).astype(int)
                                                 ).to_csv(data, index=False)
    spec = tiny_spec(tmp_path, name="submitted", num_samples=4)
    spec["train"]["dataset"] = {"name": "table", "path": str(data)}
    spec["train"].update(epochs=15, batch_size=32, early_stopping={"patience": None})
    path = write_spec(tmp_path, spec)
    storage = tmp_path / "cluster-storage"

    result = sweep(cluster, "submit", str(path), "--address", cluster.dashboard,
                   "--storage", str(storage), "--wait")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "submitted sweep submitted as job raysubmit_" in result.stderr
    assert "Top 4 of 4 trials" in result.stdout  # the job's own output, streamed
    assert "is on a local" in result.stdout  # two nodes, a local folder: warned

    results = storage / "submitted" / schema.RESULTS_DIR
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    assert len(trials) == 4 and (trials[schema.STOP_REASON] == "completed").all()
    assert trials["node_id"].nunique() == 2  # the trials spread over both nodes
    assert (trials["best_val_acc"] > 0.8).all()  # they read the table
    staged = json.loads((results / schema.SWEEP_FILE).read_text())["spec"]
    staged_path = Path(staged["train"]["dataset"]["path"])
    assert staged_path.parent == storage / ".data"  # on the shared storage, not the client
    assert staged_path.read_bytes() == data.read_bytes()

    listed = sweep(cluster, "jobs", "--address", cluster.dashboard)
    assert listed.returncode == 0 and "SUCCEEDED" in listed.stdout


@pytest.mark.slow
def test_stop_is_graceful_and_submit_resume_finishes_the_sweep(cluster, tmp_path):
    spec = tiny_spec(tmp_path, name="stopped", num_samples=6, max_concurrent_trials=2)
    spec["train"].update(dataset={"name": "synthetic", "n_samples": 20000, "n_features": 20},
                         model={"name": "mlp", "hidden": 64, "depth": 2}, epochs=8,
                         batch_size=64, early_stopping={"patience": None})
    path = write_spec(tmp_path, spec)
    storage = tmp_path / "cluster-storage"
    results = storage / "stopped" / schema.RESULTS_DIR

    submitted = sweep(cluster, "submit", str(path), "--address", cluster.dashboard,
                      "--storage", str(storage))
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stderr.split(" as job ")[1].split()[0]
    wait_for(lambda: ended_trials(results) >= 2, 180, "two trials to end on the cluster")
    stopped = sweep(cluster, "stop", job, "--address", cluster.dashboard)
    assert stopped.returncode == 0 and f"job {job}: STOPPED" in stopped.stderr
    sweep_json = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep_json["status"] == "interrupted"  # Tune snapshotted: a graceful stop
    logs = sweep(cluster, "logs", job, "--address", cluster.dashboard)
    assert "interrupted:" in logs.stdout + logs.stderr

    resumed = sweep(cluster, "submit", "--resume", "stopped", "--storage", str(storage),
                    "--address", cluster.dashboard, "--wait")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    history = pd.read_parquet(results / schema.HISTORY_FILE)
    assert len(trials) == 6 and (trials[schema.STOP_REASON] == "completed").all()
    assert not history.duplicated(list(schema.HISTORY_KEY)).any()
    for _, epochs in history.groupby(schema.TRIAL_ID)["epoch"]:
        assert sorted(epochs) == list(range(1, 9))
    segments = json.loads((results / schema.SWEEP_FILE).read_text())["segments"]
    assert [(s["command"], s["status"]) for s in segments] == [("run", "interrupted"),
                                                              ("resume", "finished")]


def test_refusals_are_one_line(tmp_path):
    """In-process: refused before anything is sent, or (nothing listening) exit 3."""
    path = write_spec(tmp_path, tiny_spec(tmp_path))
    no_token = {"HOME": str(tmp_path), "RAY_AUTH_TOKEN": None, "RAY_AUTH_TOKEN_PATH": None,
                "RAY_AUTH_MODE": None}
    # plain HTTP to another machine with no token: refused before anything is sent
    remote = invoke("submit", str(path), "--address", "http://10.0.0.7:8265",
                    "--storage", "/mnt/sweeps", env=no_token)
    assert remote.exit_code == 2
    assert remote.stderr.startswith("error: --address: http://10.0.0.7:8265 is another "
                                    "machine over plain HTTP and no Ray auth token")
    relative = invoke("submit", str(path), "--address", "http://127.0.0.1:1",
                      "--storage", "sweeps", env=no_token)
    assert relative.exit_code == 2 and relative.stderr.count("\n") == 1
    assert relative.stderr.startswith("error: --storage: is 'sweeps', a path relative")
    nothing = invoke("jobs", "--address", "http://127.0.0.1:1", env=no_token)
    assert nothing.exit_code == 3 and nothing.stderr.count("\n") == 1
    assert nothing.stderr.startswith("error: --address: the Ray Jobs API at "
                                     "http://127.0.0.1:1 did not answer (")


def test_cluster_yaml_passes_rays_own_config_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    validate_config(prepare_config(config))  # offline: Ray's schema and defaults
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"] == {"CPU": 0}  # trials go to the GPU workers
    start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in start and "0.0.0.0" not in yaml.safe_dump(config)
    assert all("RAY_AUTH_MODE=token" in c for c in
               config["head_start_ray_commands"][1:] + config["worker_start_ray_commands"][1:])


@pytest.mark.slow
def test_joining_with_the_token_works_and_a_wrong_token_is_exit_3(cluster, tmp_path):
    """`sweep run --address` with the token only in RAY_AUTH_TOKEN (no RAY_AUTH_MODE): the
    CLI turns token auth on before Ray is imported; a wrong token gets one error line."""
    path = write_spec(tmp_path, tiny_spec(tmp_path, name="joined", num_samples=1))
    joined = sweep(cluster, "run", str(path), "--address", cluster.address, "--quiet")
    assert joined.returncode == 0, joined.stderr[-2000:]
    wrong = subprocess.run([SWEEP, "run", str(path), "--address", cluster.address, "--quiet",
                            "--overwrite"], capture_output=True, text=True, timeout=300,
                           env={**client_env(cluster), "RAY_AUTH_TOKEN": "not-the-token"})
    assert wrong.returncode == 3
    errors = [line for line in wrong.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "check the token in RAY_AUTH_TOKEN" in errors[0]
    assert "Traceback" not in wrong.stderr
