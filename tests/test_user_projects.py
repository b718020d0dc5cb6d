"""Users' projects end to end, as a user runs them: `sweep run` in the project's own
folder outside the repository, trials in Ray workers (the embedded Ray, whose workers get
the code through Ray's runtime env); a driver killed with SIGKILL on the Dataset path,
then `sweep resume`; and a project submitted to a two-node cluster whose folder is
deleted as soon as `sweep submit` returns."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas.testing as pdt
import pytest
import yaml

from orchestrator.results import schema
from tests.faults import ended_trials, kill_run_when, ray_cluster, reported_epochs
from tests.helpers import newcomer_env
from tests.user_project import (
    SHIPPED,
    sweep_in,
    tables,
    write_loop_project,
    write_project,
    write_secret_project,
)

pytestmark = pytest.mark.slow

TIMINGS = ["epoch_s", "time_total_s"]


@pytest.mark.parametrize("kind, task, code_dir", [
    ("tensors", "regression", None),         # modules beside the spec
    ("dataset", "classification", "src"),    # modules in a `code:` folder
])
def test_a_user_project_runs_from_its_own_folder(tmp_path, kind, task, code_dir):
    project = tmp_path / "project"
    write_project(project, kind=kind, task=task, code_dir=code_dir,
                  scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
                  num_samples=4)
    result = sweep_in(project, "run", "spec.yaml", "--quiet",
                      env=newcomer_env(tmp_path / "home"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    results = project / "sweeps" / f"user-{kind}-{task}" / schema.RESULTS_DIR
    trials, history = tables(results)
    assert len(trials) == 4 and trials[schema.STOP_REASON].notna().all()
    assert set(trials["config.model.width"]) <= {8, 16}
    assert (trials["config.model.factory"] == "my_models:build").all()
    assert trials["diagnosis"].notna().all() and trials["diagnosis_reason"].notna().all()
    if task == "regression":
        assert trials["val_acc"].isna().all() and trials["val_r2"].notna().all()
        assert (trials["best_val_loss"] < trials["chance_val_loss"]).all()
        assert "val_r2" in history and history["val_r2"].notna().all()
    else:
        assert (trials["best_val_acc"] > trials["chance_val_acc"]).all()
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert len(sweep["code_hash"]) == 64
    assert sweep["spec"]["code"] == [str((project / (code_dir or "")).resolve())]


def test_the_dataset_path_killed_then_resumed_gives_the_rows_of_a_straight_run(
        tmp_path, ray_address):
    changes = dict(num_samples=4, max_concurrent_trials=2,
                   train={"dataset": {"factory": "my_data:load", "kind": "dataset",
                                      "n": 30000, "features": 16},
                          "model": {"factory": "my_models:build", "width": 64,
                                    "dropout": 0.2},
                          "epochs": 6, "batch_size": 64, "checkpoint_every": 1,
                          "optimizer": {"name": "sgd", "lr": 0.05},
                          "early_stopping": {"patience": None}},
                   search_space={"optimizer.lr": {"loguniform": [0.01, 0.2]}})
    straight_project, killed_project = tmp_path / "straight", tmp_path / "killed"
    write_project(straight_project, kind="dataset", **changes)
    write_project(killed_project, kind="dataset", **changes)
    name = "user-dataset-classification"

    straight = sweep_in(straight_project, "run", "spec.yaml", "--address", ray_address,
                        "--quiet")
    assert straight.returncode == 0, straight.stderr[-3000:]
    _, expected = tables(straight_project / "sweeps" / name / schema.RESULTS_DIR)

    results = killed_project / "sweeps" / name / schema.RESULTS_DIR
    # rows reach the tables every 2 s and at each trial's end: trials of a few seconds, and
    # any moment before the last pair has ended, leave a window the poll cannot miss
    kill_run_when(lambda: reported_epochs(results) >= 3 and ended_trials(results) < 3,
                  "the sweep to get going", "run", "spec.yaml", "--address", ray_address,
                  "--quiet", cwd=killed_project)
    resumed = sweep_in(killed_project, "resume", name, "--address", ray_address, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "has changed" not in resumed.stderr  # the same code: no warning
    trials, history = tables(results)
    assert len(trials) == 4 and (trials[schema.STOP_REASON] == "completed").all()
    assert not history.duplicated(list(schema.HISTORY_KEY)).any()

    def rows(frame):
        index = frame[schema.TRIAL_ID].str.rsplit("_", n=1).str[-1]
        return (frame.assign(**{schema.TRIAL_ID: index}).drop(columns=TIMINGS)
                .sort_values(list(schema.HISTORY_KEY)).reset_index(drop=True))

    pdt.assert_frame_equal(rows(history), rows(expected))


def test_submitted_projects_run_after_their_folders_are_deleted(tmp_path):
    """A user's model and data, and a user's own loop, each submitted to a two-node
    cluster: their folders are deleted as soon as `sweep submit` returns."""
    factories, loop = tmp_path / "factories", tmp_path / "loop"
    write_project(factories, kind="dataset", code_dir="src", num_samples=4,
                  train={"dataset": {"factory": "my_data:load", "kind": "dataset",
                                     "n": 6000},
                         "model": {"factory": "my_models:build", "width": 16},
                         "epochs": 4, "batch_size": 32,
                         "optimizer": {"name": "adam", "lr": 0.01},
                         "early_stopping": {"patience": None}})
    write_loop_project(loop, train={"function": "my_loop:train", "epochs": 4, "lr": 0.05,
                                    "hidden": 16, "rows": 8000})
    storage = tmp_path / "cluster-storage"
    with ray_cluster(dashboard=True) as cluster:
        env = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_MODE"}
        for project, name in ((factories, "user-dataset-classification"),
                              (loop, "user-loop")):
            submitted = sweep_in(project, "submit", "spec.yaml", "--address",
                                 cluster.dashboard, "--storage", str(storage), env=env)
            assert submitted.returncode == 0, submitted.stderr[-3000:]
            shutil.rmtree(project)  # nothing of the user's machine is needed from now on
            job = submitted.stderr.split(" as job ")[1].split()[0]
            waited = sweep_in(tmp_path, "logs", job, "--address", cluster.dashboard,
                              "--follow", env=env)
            assert waited.returncode == 0, waited.stdout[-3000:] + waited.stderr[-3000:]
            trials, history = tables(storage / name / schema.RESULTS_DIR)
            assert len(trials) == 4 and (trials[schema.STOP_REASON] == "completed").all()
            assert trials["node_id"].nunique() == 2  # trials on both nodes imported the code
            assert (trials["best_val_acc"] > 0.8).all()
            assert len(history) == 16 and not history.duplicated(
                list(schema.HISTORY_KEY)).any()


def test_a_trial_finds_only_the_code_in_its_shipped_copy(tmp_path, ray_address):
    """The loop looks at the folder it was imported from in its trial (the copy Ray
    unpacked, not the project) and writes down what it sees: the code, and none of the
    project's secrets, ignored files, links leaving it or its named pipe."""
    project, outside = tmp_path / "project", tmp_path / "outside"
    write_secret_project(project, outside)
    result = sweep_in(project, "run", "spec.yaml", "--address", ray_address, "--quiet",
                      timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "shared.txt is a symlink to" in result.stderr  # warned of, even with --quiet
    reports = [json.loads(p.read_text()) for p in (outside / "reports").glob("*.json")]
    assert len(reports) == 1
    report = reports[0]
    shipped_to = Path(report["folder"])
    assert not shipped_to.is_relative_to(project.resolve())  # Ray's copy, not the project
    files = {path for path, kind in report["seen"].items() if kind == "file"}
    assert files == SHIPPED
    assert set(report["seen"].values()) == {"file", "dir"}  # no link, no pipe
    assert "SECRET" not in report["text"]  # not a line of any secret, in any file
    sweep = json.loads((project / "sweeps" / "shipping" / schema.RESULTS_DIR /
                        schema.SWEEP_FILE).read_text())
    from orchestrator.spec.shipped_code import code_digest

    assert sweep["code_hash"] == code_digest([str(project.resolve())], ["scratch/"])[0]
    assert sweep["spec"]["code_exclude"] == ["scratch/"]


FAULTY = {
    # section, the module the spec's factory names, and what it does on its data
    "train.dataset.factory": ("my_data.py", '''
def load(seed, attempts, **settings):
    open(attempts, "a").write("attempt\\n")
    raise ValueError("column 'label' holds text, not classes")
'''),
    "train.model.factory": ("my_models.py", '''
def build(input_shape, num_outputs, attempts, width=16):
    open(attempts, "a").write("attempt\\n")
    raise TypeError("build() got a shape it cannot use")
'''),
    "train.function": ("my_loop.py", '''
def train(config, trial):
    open(config["attempts"], "a").write("attempt\\n")
    return config["no such key"]
'''),
}


@pytest.mark.parametrize("where", list(FAULTY))
def test_an_error_of_the_users_data_or_code_is_not_retried(tmp_path, ray_address, where):
    """A factory (or loop) that raises on its data before the first epoch is called once,
    with failure.max_failures 2: the trial errors with the user's own words; resumed with
    --resume-errored once the code is fixed, it runs again."""
    project, attempts = tmp_path / "project", tmp_path / "attempts.txt"
    failure = {"failure": {"max_failures": 2}, "num_samples": 1, "search_space": {}}
    if where == "train.function":
        write_loop_project(project, **failure)
        spec = yaml.safe_load((project / "spec.yaml").read_text())
        spec["train"]["attempts"] = str(attempts)
    else:
        write_project(project, **failure)
        spec = yaml.safe_load((project / "spec.yaml").read_text())
        spec["train"][where.split(".")[1]]["attempts"] = str(attempts)
    (project / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    module, source = FAULTY[where]
    fixed = (project / module).read_text()
    (project / module).write_text(source)

    result = sweep_in(project, "run", "spec.yaml", "--address", ray_address, "--quiet")
    assert result.returncode == 1, result.stderr[-3000:]
    assert attempts.read_text() == "attempt\n"  # once, not 1 + max_failures times
    results = project / "sweeps" / spec["name"] / schema.RESULTS_DIR
    trials, _ = tables(results)
    assert list(trials[schema.STATUS]) == ["error"]
    words = {"train.dataset.factory": "ValueError: column 'label' holds text, not classes",
             "train.model.factory": "TypeError: build() got a shape it cannot use",
             "train.function": "KeyError: 'no such key'"}[where]
    assert f"{words} (raised before the trial's first epoch was reported: an error of its " \
           "data or code, not retried)" in trials["error"][0]

    if where == "train.dataset.factory":  # fixed: it runs again, from the start
        (project / module).write_text(fixed.replace("called=None):", "called=None, "
                                                    "attempts=None):"))
        resumed = sweep_in(project, "resume", spec["name"], "--resume-errored", "--address",
                           ray_address, "--quiet")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        trials, history = tables(results)
        assert list(trials[schema.STOP_REASON]) == ["completed"]
        assert sorted(history["epoch"]) == [1, 2, 3]


FAULTY_DATA = '''
import torch
from torch.utils.data import TensorDataset


class Rows(TensorDataset):
    classes = ["no", "yes"]


def load(seed, fault="none"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(200, 6, generator=g)
    y = (x[:, 0] > 0).long()
    if fault == "nan_feature":
        x[37, 4] = float("nan")
    if fault == "label_2":
        y[51] = 2
    if fault == "one_based":
        y = y + 1
    train, val = (x[:160], y[:160]), (x[160:], y[160:])
    return (train, val) if fault == "one_based" else (Rows(*train), Rows(*val))
'''


def test_faults_of_the_data_are_errors_that_name_the_data(tmp_path, ray_address):
    """A Dataset's NaN feature (found when the loss went NaN, not read as a divergence),
    its label outside the Dataset's classes, and 1-based labels as tensors: each trial
    is `error`, the error column naming train.dataset.factory, the split and the row."""
    project = tmp_path / "project"
    write_project(project, num_samples=1, search_space={
        "dataset.fault": {"grid": ["nan_feature", "label_2", "one_based"]}})
    spec = yaml.safe_load((project / "spec.yaml").read_text())
    spec["train"]["dataset"] = {"factory": "my_data:load", "fault": "none"}
    (project / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (project / "my_data.py").write_text(FAULTY_DATA)
    result = sweep_in(project, "run", "spec.yaml", "--address", ray_address, "--quiet")
    assert result.returncode == 1, result.stderr[-3000:]
    trials, _ = tables(project / "sweeps" / spec["name"] / schema.RESULTS_DIR)
    by = trials.set_index("config.dataset.fault")
    assert (by[schema.STATUS] == "error").all() and (by["diagnosis"] != "diverged").all()
    import torch

    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(spec["seed"]))
    one_based_row = int((x[:160, 0] > 0).nonzero()[0])
    for fault, line in [
        ("nan_feature", "UserDataError: train.dataset.factory: train[37]'s input holds nan at "
                        "feature 4: the data is not finite (not a divergence of the training)"),
        ("label_2", "UserDataError: train.dataset.factory: train[51] has label 2, outside "
                    "[0, 2) (the Dataset's 2 classes): labels must be class indices 0..1"),
        ("one_based", f"UserDataError: train.dataset.factory: train label 2 at row "
                      f"{one_based_row} would make 3 classes, but no label is 0")]:
        error = by.loc[fault, "error"]
        assert line in error and "not retried" in error and "\x1b" not in error, error
