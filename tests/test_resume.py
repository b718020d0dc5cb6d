"""`sweep resume` after a driver killed, interrupted or terminated; errored trials;
damaged folders. Real processes: the console script joins the session's Ray, and is
killed by its process group, as a job system or a reboot would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest

from orchestrator.results import schema
from orchestrator.runner import run_sweep
from orchestrator.spec import spec_from_mapping
from orchestrator.sweep_folder import read_history, read_trials
from tests.conftest import sweep_cli, tiny_spec, write_spec
from tests.faults import ended_at_exit, ended_trials, reported_epochs, start_sweep, wait_for

pytestmark = pytest.mark.ray

TRIALS, EPOCHS = 6, 8
TIMINGS = ["epoch_s", "time_total_s"]


def slow_spec(tmp_path: Path, name: str) -> dict:
    """Trials of ~2 s (8 epochs of ~0.15 s), two at a time: slow enough to kill the
    driver at a chosen moment, fast enough for CI."""
    spec = tiny_spec(tmp_path, name=name, num_samples=TRIALS, max_concurrent_trials=2)
    spec["train"].update(dataset={"name": "synthetic", "n_samples": 20000, "n_features": 20},
                         model={"name": "mlp", "hidden": 64, "depth": 2}, epochs=EPOCHS,
                         batch_size=64, early_stopping={"patience": None})
    spec["search_space"] = {"optimizer.lr": {"loguniform": [0.01, 0.3]}}
    return spec


def by_index(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows keyed by the trial's index (ids differ between sweeps, indexes do not)."""
    index = frame[schema.TRIAL_ID].str.rsplit("_", n=1).str[-1]
    return frame.assign(**{schema.TRIAL_ID: index}).reset_index(drop=True)


def tables(results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables as written; a killed driver's last rows are in their parts."""
    return read_trials(results), read_history(results)


def assert_complete(trials: pd.DataFrame, history: pd.DataFrame) -> None:
    """Every trial once, ended; every epoch of every trial once, no gap."""
    assert len(trials) == TRIALS and trials[schema.TRIAL_ID].is_unique
    assert (trials[schema.STATUS] == "terminated").all()
    assert (trials[schema.STOP_REASON] == "completed").all()
    assert not history.duplicated(list(schema.HISTORY_KEY)).any()
    for _, epochs in history.groupby(schema.TRIAL_ID)["epoch"]:
        assert sorted(epochs) == list(range(1, EPOCHS + 1))


@pytest.fixture(scope="module")
def straight(tmp_path_factory, ray_address):
    """The same sweep run without interruption: what every resumed sweep must equal."""
    tmp = tmp_path_factory.mktemp("straight")
    outcome = run_sweep(spec_from_mapping(slow_spec(tmp, "straight")), quiet=True)
    assert_complete(outcome.trials, outcome.history)
    return by_index(outcome.history).drop(columns=TIMINGS)


def kill_when(tmp_path, ray_address, name: str, ready) -> tuple[Path, subprocess.Popen]:
    path = write_spec(tmp_path, slow_spec(tmp_path, name))
    results = tmp_path / "sweeps" / name / schema.RESULTS_DIR
    with ended_at_exit(start_sweep("run", str(path), "--address", ray_address,
                                   "--quiet")) as proc:
        wait_for(lambda: ready(results) or proc.poll() is not None, 120, f"{name} to get going")
        assert proc.poll() is None, "the sweep ended before the kill"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    return results, proc


@pytest.mark.parametrize("moment, ready", [
    ("before-any-trial-ended", lambda r: reported_epochs(r) >= 1 and ended_trials(r) == 0),
    ("mid-way", lambda r: ended_trials(r) >= TRIALS // 2),
    ("near-the-end", lambda r: ended_trials(r) >= TRIALS - 1),
])
def test_driver_killed_then_resumed_loses_and_repeats_nothing(tmp_path, ray_address, straight,
                                                              moment, ready):
    results, _ = kill_when(tmp_path, ray_address, "killed", ready)
    before_trials, before_history = tables(results)
    ended = before_trials[before_trials[schema.STOP_REASON].notna()][schema.TRIAL_ID]

    resumed = sweep_cli("resume", str(results.parent), "--address", ray_address)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr
    assert f"Top {TRIALS} of {TRIALS} trials" in resumed.stdout
    trials, history = tables(results)
    assert_complete(trials, history)
    # trials that had ended before the kill were not run again: their rows are as they were
    keep = lambda f: f[f[schema.TRIAL_ID].isin(ended)].reset_index(drop=True)  # noqa: E731
    # (dtypes aside: a column all null before may hold strings now; issue 9's schema)
    pdt.assert_frame_equal(keep(trials), keep(before_trials), check_dtype=False)
    pdt.assert_frame_equal(keep(history), keep(before_history), check_dtype=False)
    # every trial, resumed ones included, trained exactly as in an uninterrupted sweep
    pdt.assert_frame_equal(by_index(history).drop(columns=TIMINGS), straight)

    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["status"] == "finished"
    assert [s["command"] for s in sweep["segments"]] == ["run", "resume"]
    assert [s["status"] for s in sweep["segments"]] == ["killed", "finished"]
    assert sweep["segments"][1]["trials_ended"] == TRIALS - len(ended)

    again = sweep_cli("resume", str(results.parent), "--address", ray_address)
    assert again.returncode == 0 and "already finished" in again.stderr


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_or_terminated_then_resumed(tmp_path, ray_address, sig, code):
    path = write_spec(tmp_path, slow_spec(tmp_path, "stopped"))
    results = tmp_path / "sweeps" / "stopped" / schema.RESULTS_DIR
    with ended_at_exit(start_sweep("run", str(path), "--address", ray_address,
                                   "--quiet")) as proc:
        wait_for(lambda: ended_trials(results) >= 2 or proc.poll() is not None, 120,
                 "two trials to end")
        proc.send_signal(sig)  # to the driver alone, as `ray job stop` or Slurm would
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-3000:]
    assert "sweep resume" in err and "Traceback" not in err
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["status"] == "interrupted"
    assert sweep["segments"][0]["status"] == "interrupted"

    resumed = sweep_cli("resume", "stopped", "--storage", str(tmp_path / "sweeps"),
                        "--address", ray_address, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_complete(*tables(results))


def test_errored_trial_exit_1_then_restarted(tmp_path, ray_address):
    spec = tiny_spec(tmp_path, name="errored", num_samples=1)
    good, late = tmp_path / "good.csv", tmp_path / "late.csv"
    frame = pd.DataFrame({"a": range(200), "b": [i % 7 for i in range(200)],
                          "label": [i % 2 for i in range(200)]})
    frame.to_csv(good, index=False)
    spec["train"]["dataset"] = {"name": "table", "path": str(good)}
    spec["search_space"] = {"dataset.path": {"grid": [str(good), str(late)]}}
    path = write_spec(tmp_path, spec)
    results = tmp_path / "sweeps" / "errored" / schema.RESULTS_DIR

    first = sweep_cli("run", str(path), "--address", ray_address, "--quiet")
    assert first.returncode == 1, first.stderr[-3000:]
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    failed = trials[trials[schema.STATUS] == "error"]
    assert len(failed) == 1 and "late.csv is not a file" in failed["error"].iloc[0]

    plain = sweep_cli("resume", str(results.parent), "--address", ray_address)
    assert plain.returncode == 0 and "already finished" in plain.stderr  # errors stay errors

    frame.to_csv(late, index=False)  # the missing file arrives
    restarted = sweep_cli("resume", str(results.parent), "--address", ray_address,
                          "--restart-errored", "--quiet")
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    history = pd.read_parquet(results / schema.HISTORY_FILE)
    assert len(trials) == 2 and (trials[schema.STATUS] == "terminated").all()
    assert set(trials["config.dataset.path"]) == {str(good), str(late)}
    assert set(history[schema.TRIAL_ID]) == set(trials[schema.TRIAL_ID])
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["segments"][-1]["restarted_errored"] == failed[schema.TRIAL_ID].tolist()


# -- damaged or finished folders: one line, no Ray -------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory, ray_address) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    return run_sweep(spec_from_mapping(tiny_spec(tmp, name="done")), quiet=True).experiment_dir


def resume_without_ray(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`sweep resume` where Ray cannot start (its temp folder would lie under a file):
    a command that answers without Ray shows it did not try."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {**os.environ, "TMPDIR": str(blocker / "tmp")}
    exe = Path(sys.executable).with_name("sweep")
    return subprocess.run([str(exe), "resume", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def copy_of(folder: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(folder, tmp_path / folder.name))


def test_a_finished_sweep_says_so_without_starting_ray(tmp_path, finished):
    result = resume_without_ray(tmp_path, str(finished))
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("sweep done already finished (2 trials, 0 errored)")


@pytest.mark.parametrize("damage, message", [
    ("missing", "error: no sweep 'nope' in {storage}"),
    ("empty", "error: {folder}: is not a sweep folder (it has no results/sweep.json)"),
    ("no-state", "error: {folder}: has no Ray Tune experiment state"),
    ("truncated-parquet", "error: {folder}/results/history.parquet: is not a readable Parquet "
                          "file ("),
    ("corrupt-json", "error: {folder}/results/sweep.json: is not readable JSON ("),
])
def test_damaged_folders_are_one_line_and_exit_2(tmp_path, finished, damage, message):
    folder = copy_of(finished, tmp_path / "storage")
    sweep = json.loads((folder / "results" / "sweep.json").read_text())
    (folder / "results" / "sweep.json").write_text(json.dumps({**sweep, "status": "running"}))
    args = [str(folder)]
    if damage == "missing":
        args = ["nope", "--storage", str(tmp_path / "storage")]
    elif damage == "empty":
        folder = tmp_path / "storage" / "empty"
        folder.mkdir()
        args = [str(folder)]
    elif damage == "no-state":
        (folder / "tuner.pkl").unlink()
    elif damage == "truncated-parquet":
        data = (folder / "results" / "history.parquet").read_bytes()
        (folder / "results" / "history.parquet").write_bytes(data[: len(data) // 2])
    elif damage == "corrupt-json":
        (folder / "results" / "sweep.json").write_text('{"spec": {')
    result = resume_without_ray(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    expected = message.format(folder=folder, storage=tmp_path / "storage")
    assert result.stderr.startswith(expected), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
