"""Real sweeps on the session's shared Ray: every scheduler, reproducibility, rebuild,
divergence, time budget, searchers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from ray.tune import Callback

from orchestrator.engine.run import run_sweep
from orchestrator.results import schema
from orchestrator.results.rebuild import rebuild_tables, trial_folders
from orchestrator.spec.model import spec_from_mapping
from orchestrator.spec.schedulers import SCHEDULERS
from tests.helpers import REPO, tiny_spec, write_spec

pytestmark = pytest.mark.slow


def sweep(tmp_path, **changes):
    return run_sweep(spec_from_mapping(tiny_spec(tmp_path, **changes)))


def trial_index(frame: pd.DataFrame) -> pd.Series:
    return frame["trial_id"].str.rsplit("_", n=1).str[-1]


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_scheduler_runs_a_sweep_to_valid_results(tmp_path, ray_address, name):
    options = {"asha": {"grace_period": 1, "reduction_factor": 2},
               "hyperband": {"reduction_factor": 2},
               "median": {"grace_period": 1, "min_samples_required": 1},
               "pbt": {"perturbation_interval": 1}}.get(name, {})
    # the budget only bounds the test should a scheduler leave trials waiting for good
    outcome = sweep(tmp_path, name=name, num_samples=4, scheduler={"name": name, **options},
                    time_budget_s=150)
    trials, history = outcome.trials, outcome.history
    sweep_json = json.loads((outcome.results_dir / schema.SWEEP_FILE).read_text())
    assert sweep_json["budget_stopped"] == []  # every sweep ended by itself
    assert len(trials) == 4 and outcome.errored == 0
    assert (trials["status"] == "terminated").all()
    assert trials["stop_reason"].isin(schema.STOP_REASONS).all()
    assert trials["diagnosis"].notna().all()
    assert not history.duplicated(list(schema.HISTORY_KEY)).any()
    if name == "fifo":
        assert (trials["stop_reason"] == "completed").all()
    # every trial's best is the best of its own history rows (PBT hands trials each
    # other's checkpoints, with the donor's early-stopping state in them)
    for _, trial in trials.iterrows():
        own = history[history["trial_id"] == trial["trial_id"]]
        best = own.loc[own["val_acc"].idxmax()]
        assert trial["best_val_acc"] == best["val_acc"], trial["trial_id"]
        assert trial["best_epoch"] == best["epoch"], trial["trial_id"]
    if name != "pbt":
        assert history["exploited_from"].isna().all()


def test_hyperband_ends_when_a_rung_s_last_trial_ends_instead_of_arriving(tmp_path,
                                                                       ray_address):
    """One trial at a time: the first runs to max_t and waits there for the rest of its
    bracket; the second diverges at its first epoch. Ray's HyperBand then kept the first
    PAUSED for good and the sweep never ended (engine/tune_compat/hyperband.py); the time
    budget only bounds this test should that come back."""
    train = {**tiny_spec(tmp_path)["train"], "epochs": 4, "schedule": {"name": "constant"}}
    outcome = sweep(tmp_path, name="hb-settle", train=train, resources={"cpu": 2}, num_samples=1,
                    search_space={"optimizer.lr": {"grid": [0.05, 1e6]}},
                    scheduler={"name": "hyperband", "reduction_factor": 2},
                    time_budget_s=90)
    sweep_json = json.loads((outcome.results_dir / schema.SWEEP_FILE).read_text())
    assert sweep_json["budget_stopped"] == []  # the sweep ended by itself
    trials = outcome.trials.sort_values("trial_id")
    assert list(trials["stop_reason"]) == ["completed", "diverged"]
    assert (trials["status"] == "terminated").all()


def test_pbt_history_says_where_exploited_weights_came_from(tmp_path, ray_address):
    train = {**tiny_spec(tmp_path)["train"], "epochs": 8, "early_stopping": {"patience": None},
             "dataset": {"name": "synthetic", "n_samples": 8000, "n_features": 20}}
    # epochs long enough that the four trials overlap, rates far apart and half the
    # population exploiting: exploits are all but certain
    outcome = sweep(tmp_path, num_samples=4, resources={"cpu": 0.5}, train=train,
                    search_space={"optimizer.lr": {"loguniform": [1e-4, 0.5]}},
                    scheduler={"name": "pbt", "perturbation_interval": 1,
                               "quantile_fraction": 0.5})
    history, trials = outcome.history, outcome.trials
    exploited = history.dropna(subset=["exploited_from"])
    assert len(exploited), "no exploit in 4 trials x 8 epochs at interval 1"
    ids = set(trials["trial_id"])
    for _, row in exploited.iterrows():
        donor, epoch = row["exploited_from"].rsplit("@", 1)
        assert donor in ids and donor != row["trial_id"]
        assert int(epoch) == row["epoch"] - 1  # the epoch after the donor's checkpoint
    for _, trial in trials.iterrows():  # the best is the trial's own
        own = history[history["trial_id"] == trial["trial_id"]]
        assert trial["best_val_acc"] == own["val_acc"].max()
    # the files on disk are the same tables the sweep returned
    pdt.assert_frame_equal(pd.read_parquet(outcome.results_dir / schema.TRIALS_FILE), trials)
    pdt.assert_frame_equal(pd.read_parquet(outcome.results_dir / schema.HISTORY_FILE), history)


def test_asha_stops_weak_trials_early(tmp_path, ray_address):
    outcome = sweep(tmp_path, num_samples=6, max_concurrent_trials=1,
                    scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 3},
                    search_space={"optimizer.lr": {"loguniform": [1e-5, 0.5]}},
                    train={**tiny_spec(tmp_path)["train"], "epochs": 6})
    assert (outcome.trials["stop_reason"] == "scheduler").any()
    stopped = outcome.trials[outcome.trials["stop_reason"] == "scheduler"]
    assert (stopped["epochs"] < 6).all()


def test_same_spec_twice_gives_identical_history(tmp_path, ray_address):
    a = sweep(tmp_path / "a", num_samples=3)
    b = sweep(tmp_path / "b", num_samples=3)
    drop = ["trial_id", "epoch_s", "time_total_s"]
    ha = a.history.assign(index=trial_index(a.history)).drop(columns=drop)
    hb = b.history.assign(index=trial_index(b.history)).drop(columns=drop)
    pdt.assert_frame_equal(ha, hb)
    configs = [c for c in a.trials.columns if c.startswith(schema.CONFIG_PREFIX)]
    pdt.assert_frame_equal(a.trials[configs], b.trials[configs])


def test_rebuild_from_experiment_folder_gives_the_same_rows(tmp_path, ray_address):
    outcome = sweep(tmp_path, num_samples=3,
                    scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2})
    trials, history = rebuild_tables(outcome.experiment_dir)
    pdt.assert_frame_equal(trials, outcome.trials)
    pdt.assert_frame_equal(history, outcome.history)


@pytest.mark.parametrize("setting, tune_files", [(None, False), ("0", True)])
def test_trial_folders_hold_json_and_tunes_other_logs_only_when_asked(
        tmp_path, ray_address, monkeypatch, setting, tune_files):
    """params.json and result.json in every trial folder (the rebuild reads them);
    Tune's progress.csv and TensorBoard files only with TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=0."""
    if setting is None:
        monkeypatch.delenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", raising=False)
    else:
        monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", setting)
    outcome = sweep(tmp_path)
    folders = trial_folders(outcome.experiment_dir)
    assert len(folders) == 2
    for folder in folders:
        names = {child.name for child in folder.local.iterdir()}
        assert {"params.json", "result.json"} <= names
        assert ("progress.csv" in names) == tune_files
        assert any(n.startswith("events.out.tfevents") for n in names) == tune_files
    trials, history = rebuild_tables(outcome.experiment_dir)
    pdt.assert_frame_equal(history, outcome.history)


def test_the_driver_never_imports_torch(tmp_path, ray_address):
    """torch is for the trials' workers: `sweep run` starts faster without it, and on 2
    cores the driver's CPU is taken from the trials (Tune's TensorBoard logger imports it)."""
    path = write_spec(tmp_path, tiny_spec(tmp_path))
    code = ("import sys\nfrom orchestrator.cli import main\n"
            "try:\n"
            f"    main(['run', {str(path)!r}, '--address', {ray_address!r}, '--quiet'],\n"
            "         standalone_mode=False)\n"
            "except SystemExit as exc:\n"
            "    assert not exc.code, exc.code\n"
            "loaded = [m for m in ('torch', 'tensorboardX') if m in sys.modules]\n"
            "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "sweeps" / "tiny" / "results" / schema.TRIALS_FILE).is_file()


class PeakRunning(Callback):
    def __init__(self):
        self.peak = 0

    def on_step_end(self, iteration, trials, **info):
        self.peak = max(self.peak, sum(1 for t in trials if str(t.status) == "RUNNING"))


@pytest.mark.parametrize("searcher", [{"name": "random"},
                                      {"name": "optuna", "n_startup_trials": 2}],
                         ids=lambda s: s["name"])
def test_max_concurrent_trials_holds_for_every_searcher(tmp_path, ray_address, searcher):
    if searcher["name"] == "optuna":
        pytest.importorskip("optuna")
    peak = PeakRunning()
    spec = spec_from_mapping(tiny_spec(tmp_path, num_samples=3, max_concurrent_trials=1,
                                       searcher=searcher))
    outcome = run_sweep(spec, callbacks=[peak])
    assert len(outcome.trials) == 3 and outcome.errored == 0
    assert peak.peak == 1
    if searcher["name"] == "optuna":  # its samples stay in the space, constants are kept
        lrs = outcome.trials["config.optimizer.lr"]
        assert lrs.between(0.01, 0.3).all() and lrs.nunique() == 3
        assert (outcome.trials["config.optimizer.momentum"] == 0.9).all()


def test_torch_threads_follow_the_trials_cpu_share(tmp_path, ray_address):
    one = sweep(tmp_path / "one", num_samples=1)
    two = sweep(tmp_path / "two", num_samples=1, resources={"cpu": 2})
    assert one.trials["threads"].tolist() == [1]
    assert two.trials["threads"].tolist() == [2]
    assert (one.trials["device"] == "cpu").all()


def test_a_diverging_trial_stops_and_the_sweep_goes_on(tmp_path, ray_address):
    outcome = sweep(tmp_path, num_samples=1,
                    search_space={"optimizer.lr": {"grid": [1.0e6, 0.05]}},
                    train={**tiny_spec(tmp_path)["train"], "epochs": 5,
                           "schedule": {"name": "constant"}})
    by_lr = outcome.trials.set_index("config.optimizer.lr")
    assert by_lr.loc[1.0e6, "stop_reason"] == "diverged"
    assert by_lr.loc[1.0e6, "diagnosis"] == "diverged"
    assert by_lr.loc[1.0e6, "epochs"] < 5
    assert by_lr.loc[0.05, "stop_reason"] == "completed"
    assert outcome.errored == 0


def test_time_budget_cuts_the_sweep(tmp_path, ray_address):
    train = {**tiny_spec(tmp_path)["train"], "epochs": 100000, "checkpoint_every": 50,
             "early_stopping": {"patience": None}}
    outcome = sweep(tmp_path, num_samples=3, time_budget_s=4, train=train)
    assert (outcome.trials["stop_reason"] == "budget").any()
    assert not (outcome.trials["stop_reason"] == "completed").any()


def test_table_data_set_by_relative_path(tmp_path, ray_address, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(label=(x[:, 0] > 0).astype(int))
    frame.to_csv(tmp_path / "data.csv", index=False)
    monkeypatch.chdir(tmp_path)  # the trials run elsewhere: the path must still resolve
    train = {**tiny_spec(tmp_path)["train"], "dataset": {"name": "table", "path": "data.csv"}}
    outcome = sweep(tmp_path, num_samples=1, train=train)
    assert outcome.errored == 0
    assert outcome.trials["best_val_acc"][0] > 0.8


class KillWorkerOnce(Callback):
    """Kills the process of the first trial that reports epoch `at`, once."""

    def __init__(self, at: int):
        self.at, self.killed = at, None

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.killed is None and result.get("epoch") == self.at:
            self.killed = trial.trial_id
            os.kill(result["pid"], signal.SIGKILL)


def test_trial_restored_by_tune_after_a_crash_matches_an_uninterrupted_one(tmp_path,
                                                                            ray_address):
    train = {**tiny_spec(tmp_path)["train"], "epochs": 6, "checkpoint_every": 1,
             "model": {"name": "mlp", "hidden": 16, "depth": 2, "dropout": 0.3}}
    spec = dict(num_samples=1, train=train, failure={"max_failures": 1})
    straight = sweep(tmp_path / "straight", **spec)
    killer = KillWorkerOnce(at=3)
    crashed = run_sweep(spec_from_mapping(tiny_spec(tmp_path / "crashed", **spec)),
                        callbacks=[killer])
    assert killer.killed is not None  # the worker really died mid-trial
    lines = (crashed.experiment_dir / killer.killed / "result.json").read_text().splitlines()
    restored = {json.loads(line)["restored_from_epoch"] for line in lines}
    assert max(restored) >= 1  # resumed from a checkpoint (Tune's latest), not from scratch
    assert crashed.errored == 0 and crashed.trials["stop_reason"].tolist() == ["completed"]
    drop = ["trial_id", "epoch_s", "time_total_s"]
    pdt.assert_frame_equal(crashed.history.drop(columns=drop), straight.history.drop(columns=drop))
