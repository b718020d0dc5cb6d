"""`sweep extend`: N more trials in a finished sweep's own folder and tables, the searcher
going on from every ended trial; a killed extend is continued by `sweep resume`."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pandas.testing as pdt
import pytest

from orchestrator.engine.extend import extension_seed
from orchestrator.engine.run import run_sweep
from orchestrator.results import schema
from orchestrator.results.folder import read_history, read_trials
from orchestrator.spec import spec_from_mapping
from tests.faults import kill_run_when, reported_epochs
from tests.helpers import assert_each_epoch_once, sweep_cli, tiny_spec

SEARCHED = ["config.optimizer.lr", "config.batch_size"]


def configs(trials: pd.DataFrame) -> list[tuple]:
    return [tuple(row) for row in trials[SEARCHED].itertuples(index=False)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, ray_address):
    """A finished random-search sweep under ASHA: 3 trials of 3 epochs."""
    tmp = tmp_path_factory.mktemp("finished")
    spec = tiny_spec(tmp, name="base", num_samples=3,
                     scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2})
    outcome = run_sweep(spec_from_mapping(spec), address=ray_address)
    assert outcome.errored == 0 and len(outcome.trials) == 3
    return outcome.experiment_dir


def copy_of(folder, tmp_path):
    target = tmp_path / "sweeps" / folder.name
    shutil.copytree(folder, target)
    return target


def edit_sweep_json(folder, change) -> None:
    path = folder / schema.RESULTS_DIR / schema.SWEEP_FILE
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.slow
def test_extend_adds_exactly_n_trials_that_repeat_no_configuration(finished, tmp_path,
                                                                   ray_address):
    folder = copy_of(finished, tmp_path)
    results = folder / schema.RESULTS_DIR
    before = read_trials(results)
    result = sweep_cli("extend", str(folder), "--num-samples", "2", "--address", ray_address)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "extending" in result.stderr and "2 more trials" in result.stderr

    trials, history = read_trials(results), read_history(results)
    assert len(trials) == 5 and (trials[schema.STATUS] == "terminated").all()
    new = trials[~trials[schema.TRIAL_ID].isin(before[schema.TRIAL_ID])]
    assert len(new) == 2 and new[schema.STOP_REASON].notna().all()
    # the earlier trials' rows are as they were
    kept = trials[trials[schema.TRIAL_ID].isin(before[schema.TRIAL_ID])]
    pdt.assert_frame_equal(kept.sort_values(schema.TRIAL_ID).reset_index(drop=True),
                           before.sort_values(schema.TRIAL_ID).reset_index(drop=True),
                           check_dtype=False)
    # the searcher went on: no configuration of the sweep drawn again
    assert len(set(configs(trials))) == 5
    # the new trials' folders are in this folder, not where the copied sweep first ran
    assert {p.name for p in folder.iterdir() if (p / "params.json").is_file()} == set(
        trials[schema.TRIAL_ID])
    assert {p.name for p in finished.iterdir() if (p / "params.json").is_file()} == set(
        before[schema.TRIAL_ID])
    assert_each_epoch_once(trials, history)
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["status"] == "finished" and sweep["spec"]["num_samples"] == 5
    assert [s["command"] for s in sweep["segments"]] == ["run", "extend"]
    assert sweep["segments"][1]["trials_ended"] == 2
    (extension,) = sweep["extensions"]
    assert extension["num_samples"] == 2 and extension["seed"] == extension_seed(3, 1)
    assert extension["trials_before"] == sorted(before[schema.TRIAL_ID])

    # once more: a second extension draws from a stream of its own
    again = sweep_cli("extend", str(folder), "--num-samples", "1", "--address", ray_address,
                      "--quiet")
    assert again.returncode == 0, again.stderr[-3000:]
    trials = read_trials(results)
    assert len(trials) == 6 and len(set(configs(trials))) == 6
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert [e["seed"] for e in sweep["extensions"]] == [extension_seed(3, 1),
                                                        extension_seed(3, 2)]


@pytest.mark.slow
@pytest.mark.parametrize("change, says", [
    (lambda d: d.update(status="interrupted"), "not finished: continue it with `sweep resume"),
    (lambda d: d["spec"].update(searcher={"name": "grid"}, search_space={
        "batch_size": {"grid": [16, 32]}}), "is a grid"),
    # two batch sizes, and the three trials ran one or both of them
    (lambda d: d["spec"].update(search_space={"batch_size": {"choice": [16, 32]}}),
     "configurations that none of the sweep's 3 trials ran, not 2"),
])
def test_what_cannot_be_extended_is_one_line_and_exit_2(finished, tmp_path, change, says):
    folder = copy_of(finished, tmp_path)
    edit_sweep_json(folder, change)
    result = sweep_cli("extend", str(folder), "--num-samples", "2")
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.slow
def test_an_optuna_extend_gives_its_searcher_every_ended_trial(tmp_path, ray_address):
    from orchestrator.engine.warm_searcher import WarmOptunaSearch

    spec = tiny_spec(tmp_path, name="tpe", num_samples=3, searcher={"name": "optuna"},
                     max_concurrent_trials=1)
    first = run_sweep(spec_from_mapping(spec), address=ray_address)
    assert first.errored == 0
    folder = first.experiment_dir
    result = sweep_cli("extend", "tpe", "--storage", str(tmp_path / "sweeps"),
                       "--num-samples", "2", "--address", ray_address, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    trials, history = read_trials(folder / "results"), read_history(folder / "results")
    assert len(trials) == 5 and len(set(configs(trials))) == 5
    assert_each_epoch_once(trials, history)
    # the searcher Tune saved with the extension's experiment holds the three trials
    # that ended before it, and told of its own two
    states = sorted(folder.glob("searcher-state-*.pkl"), key=lambda p: p.stat().st_mtime)
    searcher = WarmOptunaSearch(history=[], reruns=[])
    searcher.restore(str(states[-1]))
    assert searcher.given == 3 and len(searcher.history) == 3
    assert sorted(v for _, v in searcher.history) == sorted(first.trials["val_acc"])


@pytest.mark.slow
def test_a_killed_extend_then_resume_runs_every_trial_once(finished, tmp_path, ray_address):
    folder = copy_of(finished, tmp_path)
    results = folder / schema.RESULTS_DIR
    before = read_trials(results)
    # slower epochs, so that the kill lands inside the extension
    edit_sweep_json(folder, lambda d: d["spec"]["train"]["dataset"].update(n_samples=20000))
    epochs_before = reported_epochs(results)
    kill_run_when(lambda: reported_epochs(results) >= epochs_before + 2,
                  "two epochs of the extension", "extend", str(folder), "--num-samples", "3",
                  "--address", ray_address, "--quiet", frozen=True)
    trials = read_trials(results)
    assert trials[schema.STOP_REASON].isna().any() or len(trials) < 6
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["status"] == "running"

    resumed = sweep_cli("resume", str(folder), "--address", ray_address, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials, history = read_trials(results), read_history(results)
    assert len(trials) == 6 and trials[schema.STOP_REASON].notna().all()
    assert set(before[schema.TRIAL_ID]) < set(trials[schema.TRIAL_ID])
    assert len(set(configs(trials))) == 6
    assert_each_epoch_once(trials, history)
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["status"] == "finished"
    assert [s["command"] for s in sweep["segments"]] == ["run", "extend", "resume"]
    assert sweep["segments"][1]["status"] == "killed"


@pytest.mark.slow
def test_an_extend_killed_before_tune_saved_it_starts_again_on_resume(finished, tmp_path,
                                                                      ray_address):
    """sweep.json records an extension before Tune's first save of it: a driver killed in
    between leaves Tune's newest state the finished one before it, whose restore would
    run nothing. The resume starts the extension again, with the same choice."""
    folder = copy_of(finished, tmp_path)
    results = folder / schema.RESULTS_DIR
    before = read_trials(results)

    def as_if_killed(data: dict) -> None:
        data["status"] = "running"
        data["spec"]["num_samples"] += 2
        data["extensions"] = [{"at": "2026-01-01T00:00:00+00:00", "num_samples": 2,
                               "seed": extension_seed(3, 1), "given_to_searcher": 0,
                               "trials_before": sorted(before[schema.TRIAL_ID])}]
        data["segments"].append({"command": "extend", "started_at": "2026-01-01T00:00:00"})

    edit_sweep_json(folder, as_if_killed)
    resumed = sweep_cli("resume", str(folder), "--address", ray_address, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials, history = read_trials(results), read_history(results)
    assert len(trials) == 5 and trials[schema.STOP_REASON].notna().all()
    assert len(set(configs(trials))) == 5
    assert_each_epoch_once(trials, history)
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["status"] == "finished" and len(sweep["extensions"]) == 1
    assert [(s["command"], s["status"]) for s in sweep["segments"]] == [
        ("run", "finished"), ("extend", "killed"), ("resume", "finished")]


def test_a_resume_after_an_extend_keeps_the_errored_trials_of_before_it(tmp_path):
    """Tune's newest state (the extension's experiment) holds only the extension's trials:
    a trial that errored before the extension is not one its snapshot lost, and its rows
    stay; an extension's trial that started after the snapshot is lost, as in any resume
    under a Searcher (Optuna draws its place again)."""
    from orchestrator.engine.resume import ResumePlan, _lost
    from orchestrator.results.storage import as_location

    (tmp_path / "tuner.pkl").write_bytes(b"")
    state = {"trial_data": [[json.dumps({"trial_id": "new_0", "status": "RUNNING"}), "{}"]]}
    (tmp_path / "experiment_state-2026-01-01_00-10-00.json").write_text(json.dumps(state))
    trials = pd.DataFrame({schema.TRIAL_ID: ["old_0", "old_1", "new_0", "new_1"],
                           schema.STATUS: ["terminated", "error", "running", "running"],
                           schema.STOP_REASON: ["completed", "error", None, None]})
    spec = spec_from_mapping(tiny_spec(tmp_path, searcher={"name": "optuna"}))
    plan = ResumePlan(as_location(tmp_path), spec, "running", trials, None, 1,
                      before_extension=frozenset({"old_0", "old_1"}))
    assert _lost(plan) == frozenset({"new_1"})
    without = ResumePlan(as_location(tmp_path), spec, "running", trials, None, 1)
    assert _lost(without) == frozenset({"old_1", "new_1"})  # what the record prevents
