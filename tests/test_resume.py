"""`sweep resume` after a driver killed, interrupted or terminated; errored trials;
damaged folders. Real processes (slow): the console script joins the session's Ray, and
is killed by its process group, as a job system or a reboot would. A sweep that is not
there at all is checked in-process."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest
import yaml

from orchestrator.engine.run import run_sweep
from orchestrator.results import schema
from orchestrator.results.folder import read_history, read_trials
from orchestrator.spec.model import spec_from_mapping
from tests.faults import (
    alive,
    descendants,
    ended_at_exit,
    ended_trials,
    kill_run_when,
    named,
    reported_epochs,
    start_sweep,
    wait_for,
)
from tests.helpers import (
    SLOW_EPOCHS,
    SLOW_TRIALS,
    SWEEP,
    heard,
    invoke,
    slow_spec,
    sweep_cli,
    tiny_spec,
    write_spec,
)
from tests.user_project import write_loop_project

TRIALS, EPOCHS = SLOW_TRIALS, SLOW_EPOCHS  # of slow_spec
TIMINGS = ["epoch_s", "time_total_s"]


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
    outcome = run_sweep(spec_from_mapping(slow_spec(tmp, "straight")))
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


@pytest.mark.slow
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


def as_if_snapshot_predates_their_end(experiment: Path, trial_ids: list[str]) -> None:
    """What a driver killed right after these trials ended leaves: Tune's newest
    experiment state still has them running, from a checkpoint that Tune deleted once
    they checkpointed again (it keeps the newest two). Here the state is rewritten so
    (its `trial_data` pairs hold each trial as a JSON string) and their checkpoints go."""
    import shutil

    path = max(experiment.glob("experiment_state-*.json"), key=lambda p: p.name)
    state = json.loads(path.read_text())
    for pair in state["trial_data"]:
        trial = json.loads(pair[0])
        if trial["trial_id"] in trial_ids:
            pair[0] = json.dumps({**trial, "status": "RUNNING"})
    path.write_text(json.dumps(state))
    for trial_id in trial_ids:
        for checkpoint in (experiment / trial_id).glob("checkpoint_*"):
            shutil.rmtree(checkpoint)


@pytest.mark.slow
def test_an_optuna_sweep_killed_then_resumed_runs_every_trial_once(tmp_path, ray_address):
    """A Searcher's trials are made one at a time, and Tune snapshots every ~10 s: a
    driver killed once two trials ended leaves a state in which they still run (Tune's
    ConcurrencyLimiter, told nothing of their end, then waited for them for good: the
    resumed sweep never ended) and none of the trials started since (their rows stayed
    unfinished beside the trials drawn in their place). The CLI's timeout bounds it."""
    spec = slow_spec(tmp_path, "optuna-killed")
    spec["searcher"] = {"name": "optuna", "n_startup_trials": 2}
    path = write_spec(tmp_path, spec)
    results = tmp_path / "sweeps" / "optuna-killed" / schema.RESULTS_DIR
    kill_run_when(lambda: ended_trials(results) >= 2, "two trials to end",
                  "run", str(path), "--address", ray_address, "--quiet")
    resumed = sweep_cli("resume", str(results.parent), "--address", ray_address, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_complete(*tables(results))


@pytest.mark.slow
def test_a_hyperband_sweep_killed_then_resumed_runs_to_its_end(tmp_path, ray_address):
    """Tune adds a restored sweep's ended trials to HyperBand's brackets again, where
    Ray's scheduler waited for their results for good: the resumed sweep never ended
    (engine/tune_compat/hyperband.py). The CLI's timeout bounds the test. And a snapshot
    older than some trials' ends made Tune restore them from deleted checkpoints: a Ray
    traceback each, the live line counting them errored (tune_compat.mark_ended)."""
    spec = slow_spec(tmp_path, "hb-killed")
    spec["scheduler"] = {"name": "hyperband", "reduction_factor": 2}
    path = write_spec(tmp_path, spec)
    results = tmp_path / "sweeps" / "hb-killed" / schema.RESULTS_DIR
    # late enough that Tune's own snapshot holds ended trials
    kill_run_when(lambda: ended_trials(results) >= TRIALS - 2, "four trials to end",
                  "run", str(path), "--address", ray_address, "--quiet")
    before = read_trials(results)
    ended = sorted(before[before[schema.STOP_REASON].notna()][schema.TRIAL_ID])[:3]
    as_if_snapshot_predates_their_end(results.parent, ended)
    resumed = sweep_cli("resume", str(results.parent), "--address", ray_address, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr and "Could not recover" not in resumed.stderr
    live = [line for line in resumed.stderr.splitlines() if line.startswith("trials ")]
    assert live and all(" 0 errored" in line for line in live), live
    assert live[-1].startswith(f"trials {TRIALS}/{TRIALS} done")
    trials = read_trials(results)
    assert len(trials) == TRIALS and trials[schema.STOP_REASON].notna().all()
    # the trials that had ended were not run again: their rows are as they were
    pdt.assert_frame_equal(
        trials[trials[schema.TRIAL_ID].isin(ended)].reset_index(drop=True),
        before[before[schema.TRIAL_ID].isin(ended)].reset_index(drop=True), check_dtype=False)


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143)])
def test_interrupted_or_terminated_then_resumed(tmp_path, ray_address, sig, code):
    # SIGINT to the driver alone is what the process-group test below sends (the embedded
    # Ray's processes are in sessions of their own) and the second-Ctrl-C test starts with
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
    assert "Tuner.restore" not in err  # Tune's hint for its own API users
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["status"] == "interrupted"
    assert sweep["segments"][0]["status"] == "interrupted"

    resumed = sweep_cli("resume", "stopped", "--storage", str(tmp_path / "sweeps"),
                        "--address", ray_address, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_complete(*tables(results))


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_whole_process_group_stops_an_embedded_sweep_gracefully(
        tmp_path, ray_address, sig, code):
    """`timeout`, Slurm's scancel and systemd signal the driver's whole process group, and
    Ctrl-C in a terminal signals its foreground group. The embedded Ray's processes live
    in sessions of their own (engine/tune_compat/), so the signal reaches the driver
    alone: before, SIGTERM killed the GCS first and the driver hung 60 s, then exit 1
    with sweep.json `running`."""
    path = write_spec(tmp_path, slow_spec(tmp_path, "grouped"))
    results = tmp_path / "sweeps" / "grouped" / schema.RESULTS_DIR
    with ended_at_exit(start_sweep("run", str(path), "--quiet")) as proc:  # embedded Ray
        wait_for(lambda: ended_trials(results) >= 1 or proc.poll() is not None, 240,
                 "a trial to end")
        assert proc.poll() is None, "the sweep ended before the signal"
        ray_processes = descendants(proc.pid)
        assert named(ray_processes, "gcs_server"), "the driver started no Ray of its own"
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-3000:]
    assert "Failed to connect to GCS" not in err and "Traceback" not in err
    assert "Tuner.restore" not in err
    assert f"continue with `sweep resume {results.parent}`" in err
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["status"] == "interrupted"
    # the driver ended the Ray it started (the raylet's workers follow it within seconds)
    wait_for(lambda: not alive(ray_processes), 60, "the embedded Ray's processes to end")

    resumed = sweep_cli("resume", str(results.parent), "--address", ray_address, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_complete(*tables(results))


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_and_still_marks_the_sweep_interrupted(
        tmp_path, ray_address):
    """Tune stops at once on a second Ctrl-C (a KeyboardInterrupt wherever the driver
    is, without its last snapshot); sweep.json said `running` after it. The trials'
    third epoch lasts a minute, so Tune's graceful stop waits for them (5 s, then it
    kills them) and the second Ctrl-C surely lands while Tune is still stopping."""
    stall = tmp_path / "stall"
    stall.write_text("")
    path = write_loop_project(
        tmp_path / "p", name="twice", num_samples=2, max_concurrent_trials=2,
        storage=str(tmp_path / "sweeps"), search_space={"lr": {"loguniform": [0.01, 0.2]}},
        train={"function": "my_loop:train", "epochs": 4, "lr": 0.05, "hidden": 16,
               "rows": 400, "stall_while": str(stall)})
    results = tmp_path / "sweeps" / "twice" / schema.RESULTS_DIR
    with ended_at_exit(start_sweep("run", str(path), "--address", ray_address,
                                   "--quiet", cwd=path.parent)) as proc:
        wait_for(lambda: reported_epochs(results) >= 4 or proc.poll() is not None, 120,
                 "two epochs of each trial reported")
        assert proc.poll() is None, "the sweep ended before the first Ctrl-C"
        proc.send_signal(signal.SIGINT)
        seen = []
        for line in proc.stderr:  # the first one is being handled: Tune is stopping
            seen.append(line)
            if line.startswith("stopping:"):
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    err = "".join(seen) + err
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "Tuner.restore" not in err
    assert f"continue with `sweep resume {results.parent}`" in err
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["status"] == "interrupted"
    assert sweep["segments"][0]["reason"] == "stopped at once by a second Ctrl-C"

    stall.unlink()
    resumed = sweep_cli("resume", str(results.parent), "--address", ray_address, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials, history = tables(results)
    assert len(trials) == 2 and (trials[schema.STOP_REASON] == "completed").all(), trials
    assert not history.duplicated(list(schema.HISTORY_KEY)).any()
    for _, epochs in history.groupby(schema.TRIAL_ID)["epoch"]:
        assert sorted(epochs) == [1, 2, 3, 4]


@pytest.mark.slow
def test_errored_trial_exit_1_then_restarted(tmp_path, ray_address):
    """One trial's data is not there yet (a user's data factory raises in the trial):
    exit 1 with its error row; a plain resume leaves it; once the data arrives,
    --restart-errored runs it again from scratch."""
    from tests.user_project import write_project

    arrived = tmp_path / "arrived"
    path = write_project(tmp_path / "proj", name="errored", num_samples=1,
                         storage=str(tmp_path / "sweeps"),
                         search_space={"dataset.source": {"grid": ["good", "late"]}})
    (tmp_path / "proj" / "my_data.py").write_text(
        "from pathlib import Path\nimport torch\n\n\n"
        "def load(seed, source='good', arrived=None, **settings):\n"
        "    if source == 'late' and not Path(arrived).exists():\n"
        "        raise FileNotFoundError('the late data is not there yet')\n"
        "    x = torch.randn(200, 4, generator=torch.Generator().manual_seed(seed))\n"
        "    y = (x[:, 0] > 0).long()\n"
        "    return (x[:160], y[:160]), (x[160:], y[160:])\n")
    spec = yaml.safe_load(path.read_text())
    spec["train"]["dataset"] = {"factory": "my_data:load", "arrived": str(arrived)}
    path.write_text(yaml.safe_dump(spec))
    results = tmp_path / "sweeps" / "errored" / schema.RESULTS_DIR

    first = sweep_cli("run", str(path), "--address", ray_address, "--quiet")
    assert first.returncode == 1, first.stderr[-3000:]
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    failed = trials[trials[schema.STATUS] == "error"]
    assert len(failed) == 1 and "the late data is not there yet" in failed["error"].iloc[0]

    plain = sweep_cli("resume", str(results.parent), "--address", ray_address)
    assert plain.returncode == 0 and "already finished" in plain.stderr  # errors stay errors

    arrived.touch()  # the missing data arrives
    restarted = sweep_cli("resume", str(results.parent), "--address", ray_address,
                          "--restart-errored", "--quiet")
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    history = pd.read_parquet(results / schema.HISTORY_FILE)
    assert len(trials) == 2 and (trials[schema.STATUS] == "terminated").all()
    assert set(trials["config.dataset.source"]) == {"good", "late"}
    assert set(history[schema.TRIAL_ID]) == set(trials[schema.TRIAL_ID])
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["segments"][-1]["restarted_errored"] == failed[schema.TRIAL_ID].tolist()


# -- missing, damaged or finished folders: one line, no Ray -------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory, ray_address) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    return run_sweep(spec_from_mapping(tiny_spec(tmp, name="done"))).experiment_dir


def resume_without_ray(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`sweep resume` where Ray cannot start (its temp folder would lie under a file):
    a command that answers without Ray shows it did not try."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {**os.environ, "TMPDIR": str(blocker / "tmp")}
    return subprocess.run([SWEEP, "resume", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def copy_of(folder: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(folder, tmp_path / folder.name))


@pytest.mark.slow
def test_a_finished_sweep_says_so_without_starting_ray(tmp_path, finished):
    result = resume_without_ray(tmp_path, str(finished))
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("sweep done already finished (2 trials, 0 errored)")


@pytest.mark.slow
def test_a_deleted_trials_table_comes_back_from_tunes_folders(tmp_path, finished):
    """trials.parquet deleted: `resume` and `ls` rebuild its rows rather than report a
    finished sweep of 0 trials (no Ray needed)."""
    import shutil

    folder = copy_of(finished, tmp_path)
    (folder / schema.RESULTS_DIR / schema.TRIALS_FILE).unlink()
    shutil.rmtree(folder / schema.RESULTS_DIR / schema.TRIALS_PARTS_DIR, ignore_errors=True)
    result = resume_without_ray(tmp_path, str(folder))
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("sweep done already finished (2 trials, 0 errored)")
    listed = invoke("ls", "--storage", str(tmp_path))
    assert listed.exit_code == 0 and "2 terminated" in listed.stdout


def test_a_missing_sweep_is_one_line_and_exit_2(tmp_path):
    """In-process: the guard of the fast lane fails this test if Ray starts."""
    storage = tmp_path / "storage"
    (storage / "other").mkdir(parents=True)
    result = invoke("resume", "nope", "--storage", str(storage))
    assert result.exit_code == 2
    assert result.stderr == f"error: no sweep 'nope' in {storage}\n"


def test_a_folder_that_holds_no_sweep_is_one_line_and_exit_2(tmp_path):
    folder = tmp_path / "storage" / "empty"
    folder.mkdir(parents=True)
    result = invoke("resume", str(folder))
    assert result.exit_code == 2
    assert result.stderr == (f"error: {folder}: is not a sweep folder (it has no "
                             "results/sweep.json)\n")


def test_resume_and_restart_of_errored_trials_exclude_each_other(tmp_path):
    result = invoke("resume", str(tmp_path), "--resume-errored", "--restart-errored")
    assert result.exit_code == 2
    assert result.stderr == ("error: --resume-errored, --restart-errored: give one or the "
                             "other\n")


@pytest.mark.slow
@pytest.mark.parametrize("damage, message", [
    ("no-state", "error: {folder}: has no Ray Tune experiment state"),
    ("truncated-parquet", "error: {folder}/results/history.parquet: is not a readable Parquet "
                          "file ("),
    ("corrupt-json", "error: {folder}/results/sweep.json: is not readable JSON ("),
])
def test_damaged_folders_are_one_line_and_exit_2(tmp_path, finished, damage, message):
    folder = copy_of(finished, tmp_path / "storage")
    sweep = json.loads((folder / "results" / "sweep.json").read_text())
    (folder / "results" / "sweep.json").write_text(json.dumps({**sweep, "status": "running"}))
    if damage == "no-state":
        (folder / "tuner.pkl").unlink()
    elif damage == "truncated-parquet":
        data = (folder / "results" / "history.parquet").read_bytes()
        (folder / "results" / "history.parquet").write_bytes(data[: len(data) // 2])
    elif damage == "corrupt-json":
        (folder / "results" / "sweep.json").write_text('{"spec": {')
    result = resume_without_ray(tmp_path, str(folder))
    assert result.returncode == 2, result.stderr
    expected = message.format(folder=folder)
    assert result.stderr.startswith(expected), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


# -- what Tune says on a stop and a resume, and its state marked: in-process, no Ray ---

def _shown(logger_name: str, message: str, context) -> list[str]:
    """The records a handler on `logger_name` gets for `message` inside `context`."""
    import logging

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        with context:
            logger.warning(message)
    finally:
        logger.removeHandler(handler)
    return seen


def test_tunes_stop_lines_become_ours_naming_sweep_resume():
    from orchestrator.engine.interrupts import stop_lines

    lines = lambda: stop_lines("sweep resume /s/x")  # noqa: E731
    with heard() as said:
        assert _shown("ray.tune.tune", "Stop signal received (e.g. via SIGINT/Ctrl+C), "
                      "ending Ray Tune run. ... Press CTRL+C (or send SIGINT/SIGKILL/SIGTERM) "
                      "to skip. ", lines()) == []
    assert said == ["stopping: saving the sweep's state for `sweep resume /s/x` (Ctrl-C "
                    "again stops at once)"]
    assert _shown("ray.tune.tune", "Experiment has been interrupted, but the most recent "
                  "state was saved.\nResume experiment with: Tuner.restore(path=\"/s/x\", "
                  "trainable=...)", lines()) == []
    assert _shown("ray.tune.tune", "Trials did not complete: [t]", lines()) == [
        "Trials did not complete: [t]"]  # anything else still shows, this one until a stop
    with heard(), lines():  # after a stop, Tune's list of the trials the stop cut is dropped
        _shown("ray.tune.tune", "Stop signal received (e.g. via SIGINT/Ctrl+C)",
               contextlib.nullcontext())
        assert _shown("ray.tune.tune", "Trials did not complete: [t]",
                      contextlib.nullcontext()) == []


def test_a_second_ctrl_c_is_a_keyboard_interrupt_once_the_stop_line_is_said():
    """Tune logs its stop line from its SIGINT handler and restores the previous handler
    after: the line is said with that handler back, so a Ctrl-C while it is written (a
    slow stderr) is the second one, not Tune's first again (CI caught that race)."""
    import signal
    import warnings

    from orchestrator.engine.interrupts import stop_lines
    from orchestrator.errors import SweepWarning

    def tunes(signum, frame):  # Tune's handler, as far as the stop line goes
        logging.getLogger("ray.tune.tune").warning("Stop signal received (e.g. via SIGINT)")

    def said(message, category, *rest, **kwargs):  # the line, shown as the CLI shows it
        if issubclass(category, SweepWarning):
            handler_when_said.append(signal.getsignal(signal.SIGINT))

    handler_when_said = []
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", SweepWarning)
            warnings.showwarning = said
            with stop_lines("sweep resume /s/x"):
                signal.signal(signal.SIGINT, tunes)
                tunes(signal.SIGINT, None)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert handler_when_said == [signal.default_int_handler]


def test_tunes_harmless_warnings_are_dropped_and_no_other():
    from orchestrator.engine import tune_noise

    unreported = ("Failed to fetch metrics for 2 trial(s):\n- train_trial_a_00002: "
                  "FileNotFoundError('... both result.json and progress.csv were not found')")
    assert _shown("ray.tune.analysis.experiment_analysis", unreported, tune_noise.quiet()) == []
    not_copied = "Remote file not found: /s/x/a_00002/result.json"
    assert _shown("ray.tune.logger.logger", not_copied, tune_noise.quiet()) == []
    other = "Remote file not found: /s/x/a_00002/checkpoint_000003"
    assert _shown("ray.tune.logger.logger", other, tune_noise.quiet()) == [other]
    assert _shown("ray.tune.logger.logger", not_copied, contextlib.nullcontext()) == [
        not_copied]  # only within the block


def test_trials_the_tables_ended_are_marked_ended_in_tunes_newest_state(tmp_path):
    from orchestrator.engine.tune_compat import mark_ended
    from orchestrator.results.storage import as_location

    (tmp_path / "tuner.pkl").write_bytes(b"")
    trial = lambda tid, status: json.dumps({"trial_id": tid, "status": status,  # noqa: E731
                                            "config": {"lr": 0.1}})
    older = tmp_path / "experiment_state-2026-01-01_00-00-00.json"
    older.write_text(json.dumps({"trial_data": [[trial("a", "RUNNING"), "{}"]]}))
    newest = tmp_path / "experiment_state-2026-01-01_00-10-00.json"
    newest.write_text(json.dumps({"runner_data": {"x": 1}, "trial_data": [
        [trial("a", "RUNNING"), "{}"], [trial("b", "PAUSED"), "{}"],
        [trial("c", "TERMINATED"), "{}"], [trial("d", "RUNNING"), "{}"]]}))
    assert mark_ended(as_location(tmp_path), frozenset({"a", "b", "c"})) == ["a", "b"]
    state = json.loads(newest.read_text())
    assert [json.loads(t)["status"] for t, _ in state["trial_data"]] == [
        "TERMINATED", "TERMINATED", "TERMINATED", "RUNNING"]
    assert json.loads(state["trial_data"][0][0])["config"] == {"lr": 0.1}
    assert state["runner_data"] == {"x": 1}
    assert "RUNNING" in older.read_text()  # Tune restores the newest only
    newest.write_text("{not json")  # a state of another shape is left as it is
    assert mark_ended(as_location(tmp_path), frozenset({"d"})) == []
    assert newest.read_text() == "{not json"


def test_the_gcs_watch_tells_an_answering_address_from_a_silent_one():
    import socket

    from orchestrator.engine.gcs_watch import answers

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert answers(f"127.0.0.1:{port}")
    assert not answers(f"127.0.0.1:{port}")  # closed: nothing listens there now
    assert not answers("not an address")
