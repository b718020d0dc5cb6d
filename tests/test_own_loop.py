"""A user's own training loop (`train.function`): the spec's checks before Ray starts
and the order of reported epochs (fast), and, with real Ray processes (slow), the loop
under ASHA from its own folder, a driver killed mid-sweep then resumed, a trial whose
loop does not report the spec's metric, and loops that misreport (an epoch again or
back, a NaN train loss at epoch 1, a crash retried)."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml

from orchestrator.results import schema
from orchestrator.trainable.loop import out_of_order
from tests.faults import ended_trials, kill_run_when, reported_epochs
from tests.helpers import assert_each_epoch_once, invoke
from tests.user_project import sweep_in, tables, write_loop_project


def changed(path, **changes):
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        section, _, leaf = key.rpartition(".")
        target = data[section] if section else data
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"train.function": "nowhere:train"},
     "train.function: cannot import 'nowhere' (ModuleNotFoundError: No module named "
     "'nowhere')"),
    ({"train.function": "my_loop:torch"}, "train.function: my_loop:torch is a module, not a "
                                          "callable"),
    ({"train.function": "my_loop:torch.manual_seed"},
     "train.function: my_loop:torch.manual_seed must take (config, trial)"),
    ({"search_space": {"lr": {"loguniform": [0.01, 0.2]}, "hiden": {"choice": [8, 32]}}},
     "search_space.hiden: names no key that train: declares (it declares: epochs, hidden, "
     "lr, rows)"),
    ({"metric": "accuracy", "mode": None},
     "mode: is required: metric 'accuracy' is your loop's own"),
    ({"train.epochs": None}, "train.epochs: is None, but your loop must declare its epochs"),
])
def test_bad_loops_are_one_line_before_ray(tmp_path, changes, message):
    path = changed(write_loop_project(tmp_path / "p"), **changes)
    result = invoke("validate", str(path))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {path}: {message}"), result.stderr
    assert "\n" not in result.stderr.strip()


def test_a_loop_validates_and_lr_find_says_it_needs_the_trainable(tmp_path):
    path = write_loop_project(tmp_path / "p")
    result = invoke("validate", str(path))
    assert result.exit_code == 0 and "my_loop:train (yours)" in result.stdout
    refused = invoke("lr-find", str(path))
    assert refused.exit_code == 2 and "train.function: lr-find trains the shared" in \
        refused.stderr


@pytest.mark.slow
def test_a_loop_under_asha_from_its_own_folder(tmp_path, ray_address):
    project = tmp_path / "project"
    write_loop_project(project, num_samples=8, train={
        "function": "my_loop:train", "epochs": 8, "lr": 0.05, "hidden": 16, "rows": 400},
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2})
    result = sweep_in(project, "run", "spec.yaml", "--address", ray_address, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    results = project / "sweeps" / "user-loop" / schema.RESULTS_DIR
    trials, history = tables(results)
    assert len(trials) == 8
    reasons = set(trials[schema.STOP_REASON])
    assert "scheduler" in reasons and "completed" in reasons  # ASHA stopped some
    assert (trials.loc[trials[schema.STOP_REASON] == "completed", "epochs"] == 8).all()
    assert_each_epoch_once(trials, history)
    # the loop's own metric: a float column of both tables, filled everywhere
    assert history["grad_steps"].dtype == "float64" and history["grad_steps"].notna().all()
    assert trials["grad_steps"].notna().all()
    # no trial.watch in this loop: the training's signals are null
    assert history[list(schema.SIGNAL_COLUMNS)].isna().all().all()
    assert set(trials["config.hidden"]) <= {8, 32}
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["loop_metrics"] == {"grad_steps": "float64"}
    assert trials["diagnosis"].notna().all()
    assert trials["diagnosis_reason"].str.contains("your own loop").all()
    report = sweep_in(project, "report", "user-loop", "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]
    export = sweep_in(project, "export", "user-loop", "--table", "history", "-o",
                      str(tmp_path / "h.csv"))
    assert export.returncode == 0 and "grad_steps" in (tmp_path / "h.csv").read_text()


@pytest.mark.slow
def test_a_loop_with_watch_has_the_signals_in_its_history(tmp_path, ray_address):
    """`trial.watch(model, opt)` in the loop, nothing else changed: every epoch's row has
    the training's signals, and the report draws them beside the loss."""
    project = tmp_path / "project"
    write_loop_project(project, num_samples=2, search_space={}, train={
        "function": "my_loop:train", "epochs": 3, "lr": 0.05, "hidden": 16, "rows": 400,
        "watch": True})
    result = sweep_in(project, "run", "spec.yaml", "--address", ray_address, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    trials, history = tables(project / "sweeps" / "user-loop" / schema.RESULTS_DIR)
    assert len(history) == 6 and (trials[schema.STOP_REASON] == "completed").all()
    signals = history[["grad_norm", "grad_norm_max", "update_ratio"]]
    assert signals.notna().all().all() and (signals > 0).all().all()
    assert (history["grad_norm_max"] >= history["grad_norm"]).all()
    assert history["grad_norm_ratio"].isna().all()  # the loop's net: 2 weight layers
    report = sweep_in(project, "report", "user-loop", "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]
    assert 'id="chart-signals"' in (tmp_path / "report" / "report.html").read_text()


@pytest.mark.slow
def test_a_loop_killed_mid_sweep_then_resumed_has_every_epoch_once(tmp_path, ray_address):
    project = tmp_path / "project"
    write_loop_project(project, num_samples=4, max_concurrent_trials=2, train={
        "function": "my_loop:train", "epochs": 6, "lr": 0.05, "hidden": 64, "rows": 20000},
        scheduler={"name": "fifo"})
    results = project / "sweeps" / "user-loop" / schema.RESULTS_DIR
    kill_run_when(lambda: reported_epochs(results) >= 3 and ended_trials(results) < 4,
                  "the loop sweep to get going", "run", "spec.yaml", "--address", ray_address,
                  "--quiet", cwd=project)
    resumed = sweep_in(project, "resume", "user-loop", "--address", ray_address, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials, history = tables(results)
    assert len(trials) == 4 and (trials[schema.STOP_REASON] == "completed").all()
    assert (trials["epochs"] == 6).all()
    assert_each_epoch_once(trials, history)
    segments = json.loads((results / schema.SWEEP_FILE).read_text())["segments"]
    assert [s["status"] for s in segments] == ["killed", "finished"]


@pytest.mark.slow
def test_a_loop_that_does_not_report_the_metric_errors_with_one_line(tmp_path, ray_address):
    project = tmp_path / "project"
    write_loop_project(project, num_samples=1, metric="accuracy", mode="max",
                       search_space={})
    result = sweep_in(project, "run", "spec.yaml", "--address", ray_address, "--quiet")
    assert result.returncode == 1, result.stderr[-3000:]
    trials, _ = tables(project / "sweeps" / "user-loop" / schema.RESULTS_DIR)
    error = trials["error"].iloc[0]
    assert ("the spec's metric 'accuracy' is not among the reported keys (grad_steps, "
            "train_loss, val_acc, val_loss)") in error


@pytest.mark.parametrize("epoch, last, restored, wrong", [
    (1, None, 0, None),
    (3, None, 0, None),  # a first report past 1: a loop that reports every k-th epoch
    (4, 3, 0, None),
    (6, 3, 0, None),  # a gap
    (3, None, 2, None),  # the epoch after the restored checkpoint's
    (3, 3, 0, "trial.report: epoch 3 reported after epoch 3; epochs must increase"),
    (2, 3, 0, "trial.report: epoch 2 reported after epoch 3; epochs must increase"),
    (2, None, 2, "trial.report: epoch 2 reported after restoring the checkpoint of epoch 2; "
                 "a restored loop goes on from the epoch after its checkpoint's (3)"),
    (1, None, 4, "trial.report: epoch 1 reported after restoring the checkpoint of epoch 4"),
])
def test_reported_epochs_must_increase(epoch, last, restored, wrong):
    found = out_of_order(epoch, last, restored)
    assert found == wrong if wrong is None else found.startswith(wrong), found


MISREPORTING = """
import math
from pathlib import Path


def train(config, trial):
    calls = Path(config["calls"]) / config["how"]
    calls.write_text(calls.read_text() + "call\\n" if calls.exists() else "call\\n")
    epochs = {"again": [1, 2, 3, 3], "back": [1, 2, 3, 2], "gap": [1, 3, 4],
              "nan_first": [1, 2, 3, 4], "crash_once": [1, 2, 3, 4]}[config["how"]]
    for epoch in epochs:
        if config["how"] == "crash_once" and epoch == 3 and calls.read_text() == "call\\n":
            raise RuntimeError("the node went away")  # retried: not the loop's mistake
        loss = 1.0 / epoch
        trial.report(epoch=epoch, val_acc=0.5 + 0.1 * epoch, val_loss=loss * 1.1,
                     train_loss=math.nan if config["how"] == "nan_first" and epoch == 1
                     else loss)
"""


@pytest.mark.slow
def test_a_loop_that_misreports_its_epochs_errors_with_one_line(tmp_path, ray_address):
    """Loops that report an epoch again or go back end with one line naming both epochs
    in the error column (no colour codes), run once though failures may be retried; a
    gap, a NaN train loss at epoch 1 (read as missing, not diverged) and a crash retried
    from the start complete; the progress line shows the loop's best val_acc."""
    project, calls = tmp_path / "project", tmp_path / "calls"
    calls.mkdir()
    write_loop_project(project, num_samples=1, failure={"max_failures": 1},
                       train={"function": "my_loop:train", "epochs": 4, "how": "gap",
                              "calls": str(calls)},
                       search_space={"how": {"grid": ["again", "back", "gap", "nan_first",
                                                      "crash_once"]}})
    (project / "my_loop.py").write_text(textwrap.dedent(MISREPORTING))
    result = sweep_in(project, "run", "spec.yaml", "--address", ray_address)
    assert result.returncode == 1, result.stderr[-3000:]  # trials errored
    trials, history = tables(project / "sweeps" / "user-loop" / schema.RESULTS_DIR)
    by = trials.set_index("config.how")
    for how, line in [("again", "epoch 3 reported after epoch 3"),
                      ("back", "epoch 2 reported after epoch 3")]:
        assert by.loc[how, schema.STATUS] == "error"
        error = by.loc[how, "error"]
        assert (f"ReportError: trial.report: {line}; epochs must increase from one report "
                "to the next (an error of its data or code, not retried)") in error, error
        assert "\x1b" not in error
        assert (calls / how).read_text() == "call\n"  # not retried
    assert by.loc["gap", schema.STOP_REASON] == "completed"
    assert sorted(history.loc[history[schema.TRIAL_ID] == by.loc["gap", schema.TRIAL_ID],
                              "epoch"]) == [1, 3, 4]
    assert by.loc["nan_first", schema.STOP_REASON] == "completed"
    assert by.loc["nan_first", "diagnosis"] != "diverged"
    assert "train loss nan at epoch 1 read as missing" in by.loc["nan_first",
                                                                 "diagnosis_reason"]
    assert by.loc["crash_once", schema.STOP_REASON] == "completed"
    assert (calls / "crash_once").read_text() == "call\ncall\n"
    ended = [line for line in result.stderr.splitlines() if line.startswith("trials 5/5 done")]
    assert ended and all("best val_acc 0.9 ·" in line for line in ended), result.stderr[-3000:]


@pytest.mark.slow
def test_a_loop_under_pbt_completes_when_exploited_at_its_last_epoch(tmp_path, ray_address):
    """PBT's perturbation due at the last epoch hands a trial another's final checkpoint:
    the restored loop has no epoch left and returns at once, which ends the trial (every
    trial of such a sweep errored, "the loop returned without a trial.report")."""
    project = tmp_path / "project"
    write_loop_project(project, num_samples=4, train={
        "function": "my_loop:train", "epochs": 4, "lr": 0.05, "hidden": 16, "rows": 400},
        search_space={"lr": {"loguniform": [0.001, 0.5]}},
        scheduler={"name": "pbt", "perturbation_interval": 2})
    result = sweep_in(project, "run", "spec.yaml", "--address", ray_address, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    trials, history = tables(project / "sweeps" / "user-loop" / schema.RESULTS_DIR)
    assert len(trials) == 4 and (trials[schema.STOP_REASON] == "completed").all()
    assert (trials["epochs"] == 4).all() and trials["error"].isna().all()
    assert not history.duplicated(list(schema.HISTORY_KEY)).any()
    # each trial ran from epoch 1 on, each epoch once; PBT's exploit at the perturbation
    # of epoch 2 may hand a trial the checkpoint of a donor at epoch 4 (a top trial whose
    # last report is in but whose end Tune has not yet recorded): that trial then has no
    # epoch left to run, and its own history stops at 2
    ran = {t: sorted(e) for t, e in history.groupby(schema.TRIAL_ID)["epoch"]}
    assert set(ran) == set(trials[schema.TRIAL_ID])
    assert all(epochs in ([1, 2, 3, 4], [1, 2]) for epochs in ran.values()), ran
    assert [1, 2, 3, 4] in ran.values()


@pytest.mark.parametrize("restored_epoch, ends", [(4, True), (3, False)])
def test_a_trial_restored_at_its_last_epoch_has_nothing_left_to_run(
        tmp_path, monkeypatch, restored_epoch, ends):
    """A trial restored at its last epoch (PBT's exploit at the end; a driver killed
    after its last report but before Tune recorded its end) has nothing left to run: a
    loop that then reports nothing (Lightning's fit, the Trainer's train: max epochs
    reached) ends the trial, as the shared trainable's does; earlier, it is the loop's
    fault. The PBT sweep above proves the first case on real Ray."""
    import torch
    from ray import tune

    from orchestrator.spec.settings import LoopTrialConfig
    from orchestrator.trainable import loop

    torch.save(b"lightning file", tmp_path / loop.CHECKPOINT_FILE)
    (tmp_path / loop.META_FILE).write_text(json.dumps({"epoch": restored_epoch}))
    monkeypatch.setattr(tune, "get_checkpoint",
                        lambda: tune.Checkpoint.from_directory(str(tmp_path)))
    monkeypatch.setattr(loop, "_node_id", lambda: None)
    config = LoopTrialConfig.model_validate({
        "train": {"function": "m:f", "epochs": 4}, "objective": {"metric": "val_acc"}})
    trial = loop.Trial(config, "abc_00001", "cpu", 1)
    assert trial.restore() == b"lightning file"
    if ends:
        trial.finish()  # nothing to record, and no error
    else:
        with pytest.raises(ValueError, match="returned without a trial.report"):
            trial.finish()
