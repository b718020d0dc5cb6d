"""The `sweep` command: one-line errors, exit codes and the plan, in-process through
click's CliRunner; and the real console script in a subprocess (slow): a sweep end to
end, errored trials, Ctrl-C, and `--help` of every command on a fresh machine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest

from orchestrator.results import schema
from tests.helpers import COMMANDS, SWEEP, invoke, newcomer_env, sweep_cli, tiny_spec, write_spec


def test_the_commands_are_the_ones_smoke_tested():
    from orchestrator.cli import main

    assert sorted(main.commands) == sorted(COMMANDS)


def test_bad_spec_is_one_line_and_exit_2(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path, scheduler={"name": "asha",
                                                                "reduction_factor": 1}))
    result = invoke("run", str(path))
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}: scheduler.reduction_factor: is 1, but must be >= 2\n"
    assert result.stdout == ""


def test_bad_override_is_blamed_on_set(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path))
    result = invoke("validate", str(path), "--set", "train.model.depth=0")
    assert result.exit_code == 2
    assert result.stderr == "error: --set: train.model.depth: is 0, but must be >= 1\n"


def test_validate_prints_the_plan(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path))
    result = invoke("validate", str(path), "--set", "num_samples=5")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("sweep tiny: 5 trials (5 samples x grid of 1)\n")
    assert not (tmp_path / "sweeps").exists()


def test_missing_spec_file_exit_2(tmp_path):
    result = invoke("run", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'nope.yaml'}: cannot be read")
    assert result.stderr.count("\n") == 1


def test_unreachable_address_fails_fast_in_one_line(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path))
    result = invoke("run", str(path), "--address", "127.0.0.1:1", "--quiet")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --address: nothing answers at 127.0.0.1:1 (")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "sweeps").exists()  # nothing written


def test_an_existing_sweep_is_not_overwritten(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path))
    (tmp_path / "sweeps" / "tiny").mkdir(parents=True)
    result = invoke("run", str(path), "--quiet")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: name: a sweep 'tiny' already exists in "
                                    f"{tmp_path / 'sweeps'}; continue it with `sweep resume")
    assert "--overwrite" in result.stderr and result.stderr.count("\n") == 1
    assert not list((tmp_path / "sweeps" / "tiny").iterdir())  # left as it was


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    spec = tiny_spec(tmp_path, search_space={"schedule.name": {"grid": ["step", "cosine"]},
                                             "optimizer.lr": {"loguniform": [0.01, 0.1]}})
    path = write_spec(tmp_path, spec)
    result = invoke("run", str(path), "--dry-run", "--num-samples", "3",
                    "--set", "resources.cpu=2")
    assert result.exit_code == 0, result.stderr
    assert "6 trials (3 samples x grid of 2)" in result.stdout
    assert "scheduler   fifo" in result.stdout
    assert "per trial   2 CPU, 0 GPU, up to 3 epochs" in result.stdout
    assert not (tmp_path / "sweeps").exists()


# -- the real console script in a subprocess ----------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help_on_a_fresh_machine(tmp_path, command):
    """The console script as installed, in a shell where Ray never ran (an empty HOME,
    no RAY_* variable): what the in-process tests above cannot show."""
    result = subprocess.run([SWEEP, command, "--help"], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path, env=newcomer_env(tmp_path / "home"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: sweep {command} ")
    assert result.stderr == ""


@pytest.mark.slow
def test_run_end_to_end_through_the_console_script(tmp_path, ray_address):
    spec = tiny_spec(tmp_path, scheduler={"name": "asha", "grace_period": 1,
                                          "reduction_factor": 2})
    path = write_spec(tmp_path, spec)
    result = sweep_cli("run", str(path), "--address", ray_address, "--num-samples", "4")
    assert result.returncode == 0, result.stderr
    assert "Top 4 of 4 trials by best_val_acc" in result.stdout
    results = tmp_path / "sweeps" / "tiny" / "results"
    assert f"results: {results}" in result.stdout
    assert "4 errored" not in result.stderr and "0 errored" in result.stderr  # progress line

    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    history = pd.read_parquet(results / schema.HISTORY_FILE)
    assert len(trials) == 4
    fixed = schema.trial_columns("val_acc")
    assert set(fixed) <= set(trials.columns)
    assert {"config.optimizer.lr", "config.batch_size", "config.model.hidden",
            "config.schedule.name"} <= set(trials.columns)
    assert (trials["status"] == "terminated").all()
    assert trials["stop_reason"].isin(["completed", "scheduler", "early_stopping"]).all()
    for column in ("effective_lr", "best_epoch", "best_val_acc", "diagnosis", "wall_s", "node_ip"):
        assert trials[column].notna().all(), column
    assert trials["error"].isna().all()

    assert list(history.columns) == schema.HISTORY_COLUMNS
    # the training's own signals, every epoch of the shared trainable
    assert history[["grad_norm", "grad_norm_max", "update_ratio"]].notna().all().all()
    assert not history.duplicated(["trial_id", "epoch"]).any()
    assert set(history["trial_id"]) == set(trials["trial_id"])
    per_trial = history.groupby("trial_id")["epoch"].agg(["min", "max", "count"])
    assert (per_trial["min"] == 1).all() and (per_trial["max"] == per_trial["count"]).all()
    assert (trials.set_index("trial_id")["epochs"] == per_trial["max"]).all()

    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["spec"]["num_samples"] == 4 and sweep["status"] == "finished"
    assert sweep["versions"]["ray"] and sweep["versions"]["torch"]
    assert sweep["started_at"] <= sweep["ended_at"]

    again = sweep_cli("run", str(path), "--address", ray_address)
    assert again.returncode == 2
    assert "already exists" in again.stderr and "sweep resume" in again.stderr
    assert "--overwrite" in again.stderr
    assert len(pd.read_parquet(results / schema.TRIALS_FILE)) == 4  # nothing was touched


@pytest.mark.slow
def test_errored_trials_give_exit_1_and_rows(tmp_path, ray_address):
    """A trial that raises (here the user's data factory, in the trial: bad data the
    driver can check is refused before Ray starts instead) is an error row, exit 1."""
    from tests.user_project import write_project

    path = write_project(tmp_path, name="broken", num_samples=1, search_space={},
                         storage=str(tmp_path / "sweeps"))
    (tmp_path / "my_data.py").write_text("def load(seed, **settings):\n"
                                         "    raise RuntimeError('the data is gone')\n")
    result = sweep_cli("run", str(path), "--address", ray_address, "--quiet")
    assert result.returncode == 1, result.stderr
    assert "1 of 1 trials errored" in result.stderr
    trials = pd.read_parquet(tmp_path / "sweeps" / "broken" / "results" / schema.TRIALS_FILE)
    assert trials["status"].tolist() == ["error"]
    assert trials["stop_reason"].tolist() == ["error"]
    assert "the data is gone" in trials["error"][0]


@pytest.mark.slow
def test_ctrl_c_keeps_results_and_marks_the_sweep_interrupted(tmp_path, ray_address):
    spec = tiny_spec(tmp_path, name="interrupted", num_samples=3)
    spec["train"].update(epochs=100000, checkpoint_every=200, early_stopping={"patience": None})
    path = write_spec(tmp_path, spec)
    results = tmp_path / "sweeps" / "interrupted" / "results"
    proc = subprocess.Popen([SWEEP, "run", str(path), "--address", ray_address, "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 90
        while not (results / schema.HISTORY_FILE).is_file() and time.monotonic() < deadline:
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "interrupted:" in err
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["status"] == "interrupted"
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    assert trials["status"].isin(["paused", "pending"]).all()
    assert trials["stop_reason"].isna().all()  # nothing claims to have finished
    history = pd.read_parquet(results / schema.HISTORY_FILE)
    assert len(history) > 0 and not history.duplicated(["trial_id", "epoch"]).any()


def test_the_embedded_rays_commands_lose_only_their_metrics_servers():
    """What `embedded_command` changes in the commands Ray starts (the slow test below
    reads the sockets of real ones)."""
    from orchestrator.engine.tune_compat import embedded_command

    ray = "/venv/lib/python3.11/site-packages/ray"
    raylet = [f"{ray}/core/src/ray/raylet/raylet", "--node_ip_address=10.0.0.2",
              f"--dashboard_agent_command=/venv/bin/python -u {ray}/dashboard/agent.py "
              "--node-id=1 --metrics-export-port=0"]
    assert embedded_command(raylet) == [*raylet[:2], raylet[2] + " --disable-metrics-collection"]
    monitor = ["/venv/bin/python", "-u", f"{ray}/autoscaler/_private/monitor.py",
               "--logs-dir=/tmp/x", "--monitor-ip=10.0.0.2", "--gcs-address=10.0.0.2:1"]
    assert embedded_command(monitor) == [*monitor[:4], monitor[5]]
    monitor_v2 = [monitor[0], f"{ray}/autoscaler/v2/monitor.py", "--monitor-ip=10.0.0.2"]
    assert embedded_command(monitor_v2) == monitor_v2[:2]
    dashboard = ["/venv/bin/python", f"{ray}/dashboard/dashboard.py", "--host=127.0.0.1",
                 "--modules-to-load=UsageStatsHead", "--disable-frontend"]
    assert embedded_command(dashboard) == [*dashboard, "--minimal"]
    gcs = [f"{ray}/core/src/ray/gcs/gcs_server", "--gcs_server_port=0"]
    assert embedded_command(gcs) == gcs


def _answers_http(port: int) -> bool:
    """Whether an HTTP GET of /metrics at 127.0.0.1:`port` is answered 200 (with no
    token: what anyone who reaches the machine could read)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return answer.status == 200
    except Exception:  # noqa: BLE001 - refused, unauthorized, or not HTTP at all (gRPC)
        return False


@pytest.mark.slow
def test_the_embedded_ray_serves_nothing_without_a_token_on_all_interfaces(tmp_path):
    """Ray's dashboard agent served Prometheus metrics with no token on 0.0.0.0 even for
    the embedded Ray, which has no dashboard and nobody to scrape it: it is turned off
    (engine/tune_compat/). What still listens on all interfaces is Ray's gRPC (GCS,
    raylet, object manager, the agent's metrics gRPC, each process's core worker), and
    every one asks for the token (docs/cluster.md, Security)."""
    import psutil

    from tests.faults import descendants, ended_at_exit, reported_epochs, start_sweep, wait_for
    from tests.helpers import slow_spec

    path = write_spec(tmp_path, slow_spec(tmp_path, "listening"))
    results = tmp_path / "sweeps" / "listening" / schema.RESULTS_DIR
    with ended_at_exit(start_sweep("run", str(path), "--quiet")) as proc:  # embedded Ray
        wait_for(lambda: reported_epochs(results) >= 1 or proc.poll() is not None, 240,
                 "the first epoch (trials running)")
        assert proc.poll() is None, "the sweep ended before its sockets were read"
        wide = {}  # port -> process name, of every socket listening on all interfaces
        for pid in {proc.pid} | descendants(proc.pid):
            try:
                process = psutil.Process(pid)
                for conn in process.net_connections(kind="inet"):
                    if conn.status == psutil.CONN_LISTEN and conn.laddr.ip in ("0.0.0.0", "::"):
                        wide[conn.laddr.port] = process.name()
            except psutil.Error:
                continue  # a worker that ended meanwhile
        assert any(name == "gcs_server" for name in wide.values()), wide  # the GCS, as documented
        assert not [port for port in wide if _answers_http(port)], wide
        assert not [name for name in wide.values() if name not in {
            "gcs_server", "raylet", "sweep", "ray::DashboardAgent"}
            and not name.startswith("ray::")], wide
