"""The spec loader: every error path names the file, the dotted key and the rule."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import SpecError
from orchestrator.spec.model import load_spec, spec_from_mapping

MINIMAL = {"name": "t", "train": {"dataset": {"name": "synthetic"}}}


def write(tmp_path, data, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def error_of(tmp_path, data, overrides=()) -> str:
    path = write(tmp_path, data)
    with pytest.raises(SpecError) as info:
        load_spec(path, list(overrides))
    return str(info.value).replace(str(path), "SPEC")


def with_(**changes):
    data = {**MINIMAL, **changes}
    return data


def test_defaults_fill_everything():
    spec = spec_from_mapping(MINIMAL)
    assert spec.mode == "max" and spec.metric == "val_acc"
    assert spec.scheduler.name == "asha" and spec.searcher.name == "random"
    assert spec.trial_count == 1 and spec.max_epochs == 20


def test_loss_metric_defaults_to_min():
    assert spec_from_mapping(with_(metric="val_loss")).mode == "min"


@pytest.mark.parametrize("data, message", [
    (with_(metric="accuracy"),
     "SPEC: metric: is 'accuracy', but must be one of 'val_acc', 'val_loss', 'train_loss', "
     "'val_mae' or 'val_r2'"),
    (with_(metric="val_loss", mode="max"),
     "SPEC: mode: is 'max', but metric 'val_loss' needs 'min'"),
    (with_(num_samples=0), "SPEC: num_samples: is 0, but must be >= 1"),
    (with_(name="bad name!"),
     "SPEC: name: is 'bad name!', but must begin with a letter or digit, then letters, "
     "digits, '.', '_' or '-' (it names the sweep's folder and is typed in commands: a "
     "leading '-' would read as an option, a leading '.' would hide the folder; spaces, "
     "'/' and other characters are not safe in a folder name)"),
    ({"train": {}}, "SPEC: name: is required"),
    (with_(colour="red"),
     "SPEC: colour: is not a known key (known: code, code_exclude, failure, "
     "max_concurrent_trials, metric, mode, "
     "name, num_samples, resources, scheduler, search_space, searcher, seed, "
     "storage, time_budget_s, tracking, train, warm_start)"),
    (with_(train={"epochs": 0}), "SPEC: train.epochs: is 0, but must be >= 1"),
    (with_(train={"optimizer": {"lrr": 0.1}}),
     "SPEC: train.optimizer.lrr: is not a known key (known: beta1, beta2, grad_clip, lr, "
     "momentum, name, nesterov, weight_decay)"),
    (with_(train={"model": {"activation": "softsign"}}),
     "SPEC: train.model.activation: is 'softsign', but must be one of 'relu', 'gelu', "
     "'tanh', 'silu' or 'sigmoid'"),
    (with_(train={"batch_size": "big"}),
     "SPEC: train.batch_size: is 'big': input should be a valid integer, unable to parse "
     "string as an integer"),
    (with_(train={"dataset": {"name": "table"}}),
     "SPEC: train.dataset: dataset 'table' needs `path` (a .parquet or .csv file)"),
    (with_(train=[1, 2]), "SPEC: train: must be a mapping, got [1, 2]"),
    (with_(train={"dataset": {"name": "synthetic"}, "model": {"name": "cnn"}}),
     "SPEC: train: model 'cnn' needs an image data set (digits, mnist, fashion_mnist, cifar10), "
     "but dataset is 'synthetic'"),
    (with_(scheduler={"name": "bohb"}),
     "SPEC: scheduler.name: is 'bohb', but must be one of: asha, hyperband, median, pbt, fifo"),
    (with_(scheduler={"name": "asha", "reduction_factor": 1}),
     "SPEC: scheduler.reduction_factor: is 1, but must be >= 2"),
    (with_(scheduler={"name": "asha", "patience": 3}),
     "SPEC: scheduler.patience: is not a known key (known: brackets, grace_period, max_t, name, "
     "reduction_factor)"),
    (with_(scheduler={"name": "asha", "grace_period": 30}),
     "SPEC: scheduler.grace_period: is 30, but must be <= train.epochs (20)"),
    (with_(searcher={"name": "hyperopt"}),
     "SPEC: searcher.name: is 'hyperopt', but must be one of: random, grid, optuna"),
    (with_(scheduler="asha"), "SPEC: scheduler: must be a mapping like {name: ...}, got 'asha'"),
    (with_(search_space={"optimizer.lrr": {"uniform": [0.1, 0.2]}}),
     "SPEC: search_space.optimizer.lrr: names no setting of the trainable (train.optimizer has: "
     "beta1, beta2, grad_clip, lr, momentum, name, nesterov, weight_decay)"),
    (with_(search_space={"learning_rate": {"uniform": [0.1, 0.2]}}),
     "SPEC: search_space.learning_rate: names no setting of the trainable (train has: "
     "batch_scaling, batch_size, checkpoint_every, checkpoint_interval_s, dataset, "
     "device, early_stopping, epochs, "
     "eval_batch_size, label_smoothing, loss, model, oom, optimizer, precision, schedule, "
     "task)"),
    (with_(search_space={"model": {"choice": [1]}}),
     "SPEC: search_space.model: names a section, not a setting; search one of its keys "
     "(model.activation|channels|depth|dropout|hidden|name|norm)"),
    (with_(search_space={"optimizer.lr": {"loguniform": [0, 0.1]}}),
     "SPEC: search_space.optimizer.lr: loguniform low is 0, but must be > 0"),
    (with_(search_space={"optimizer.lr": {"uniform": [0.2, 0.1]}}),
     "SPEC: search_space.optimizer.lr: uniform low 0.2 must be below high 0.1"),
    (with_(search_space={"optimizer.lr": {"uniform": [0.1]}}),
     "SPEC: search_space.optimizer.lr: uniform takes [low, high], got [0.1]"),
    (with_(search_space={"optimizer.lr": {"gaussian": [0, 1]}}),
     "SPEC: search_space.optimizer.lr: unknown distribution 'gaussian'; known: uniform, "
     "loguniform, quniform, randint, lograndint, choice, grid"),
    (with_(search_space={"optimizer.lr": 0.1}),
     "SPEC: search_space.optimizer.lr: must be a mapping like {choice: [32, 64]}, got 0.1"),
    (with_(search_space={"model.depth": {"randint": [1.5, 3]}}),
     "SPEC: search_space.model.depth: randint bounds must be integers, got [1.5, 3]"),
    (with_(search_space={"model.depth": {"randint": [0, 3]}}),
     "SPEC: search_space.model.depth: value 0 is invalid for train.model.depth: is 0, but must "
     "be >= 1"),
    (with_(search_space={"batch_size": {"choice": []}}),
     "SPEC: search_space.batch_size: choice needs at least one value"),
    (with_(search_space={"batch_size": {"quniform": [8, 64, 0]}}),
     "SPEC: search_space.batch_size: quniform q is 0, but must be > 0"),
    (with_(searcher={"name": "grid"}, search_space={"optimizer.lr": {"uniform": [0.1, 0.2]}}),
     "SPEC: search_space.optimizer.lr: is uniform, but searcher 'grid' takes only grid keys"),
    (with_(searcher={"name": "optuna"}, search_space={"batch_size": {"grid": [32, 64]}}),
     "SPEC: search_space.batch_size: is a grid, which searcher 'optuna' cannot take: use choice"),
    (with_(warm_start={"from": "t"}),
     "SPEC: warm_start.from: is 't', this sweep's own name, but must name an earlier sweep"),
    (with_(warm_start={"from": "earlier", "rerun_best": -1}),
     "SPEC: warm_start.rerun_best: is -1, but must be >= 0"),
    (with_(warm_start={"storage": "./sweeps"}), "SPEC: warm_start.from: is required"),
    (with_(warm_start={"from": "earlier", "seed": 1}),
     "SPEC: warm_start.seed: is not a known key (known: from, rerun_best, storage)"),
    (with_(warm_start="earlier"),
     "SPEC: warm_start: is 'earlier': input should be a valid dictionary or instance of "
     "WarmStart"),
    (with_(scheduler={"name": "pbt"}, search_space={"batch_size": {"choice": [32, 64]}}),
     "SPEC: scheduler.name: 'pbt' perturbs continuous keys, but search_space has none "
     "(uniform, loguniform or quniform)"),
])
def test_error_messages(tmp_path, data, message):
    assert error_of(tmp_path, data) == message


@pytest.mark.parametrize("text, message", [
    ("name: [unclosed", "SPEC: is not valid YAML: line 1, column 16: expected ',' or ']', "
     "but got '<stream end>'"),
    ("", "SPEC: is empty"),
    ("- a\n- b\n", "SPEC: must be a mapping of keys, got list"),
    ("name: x\n!!python/object:os.system {}\n", None),
])
def test_yaml_errors(tmp_path, text, message):
    got = error_of(tmp_path, text)
    if message:
        assert got == message
    else:
        assert got.startswith("SPEC: is not valid YAML")  # safe_load refuses python tags


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="cannot be read: No such file or directory"):
        load_spec(tmp_path / "nope.yaml")


def test_overrides_are_yaml_and_blamed_on_set(tmp_path):
    path = write(tmp_path, MINIMAL)
    spec = load_spec(path, ["train.epochs=3", "search_space.optimizer.lr={loguniform: [1e-3, 1]}",
                            "scheduler.name=fifo"])
    assert spec.train.epochs == 3 and spec.search_space["optimizer.lr"].kind == "loguniform"
    assert spec.scheduler.name == "fifo"
    with pytest.raises(SpecError) as info:
        load_spec(path, ["train.epochs=-1"])
    assert str(info.value) == "--set: train.epochs: is -1, but must be >= 1"
    with pytest.raises(SpecError) as info:
        load_spec(path, ["epochs"])
    assert str(info.value) == "--set: epochs: must look like KEY=VALUE with a dotted KEY"


def test_exponent_without_dot_is_a_float(tmp_path):
    # PyYAML (YAML 1.1) reads 1e-3 as a string; users mean a float
    path = write(tmp_path, "name: t\ntrain: {optimizer: {lr: 1e-3}}\n"
                           "search_space: {optimizer.weight_decay: {loguniform: [1e-6, 1e-2]}}\n")
    spec = load_spec(path)
    assert spec.train.optimizer.lr == 0.001
    assert spec.search_space["optimizer.weight_decay"].args == (1e-6, 1e-2)


def test_searched_keys_need_not_be_in_train():
    spec = spec_from_mapping(with_(search_space={"dataset.noise": {"uniform": [0.0, 0.2]}}))
    assert spec.train.dataset.noise == 0.05  # the fixed value stays the default


def test_data_paths_become_absolute(tmp_path, monkeypatch):
    # trials run in other processes and folders: a relative path would break there
    monkeypatch.chdir(tmp_path)
    spec = spec_from_mapping(with_(train={"dataset": {"name": "table", "path": "data/x.csv"}},
                                   search_space={"dataset.path": {"choice": ["a.csv", "/b.csv"]}}))
    assert spec.train.dataset.path == str(tmp_path / "data" / "x.csv")
    assert spec.search_space["dataset.path"].args == (str(tmp_path / "a.csv"), "/b.csv")


def test_grid_counts_trials():
    spec = spec_from_mapping(with_(num_samples=2, search_space={
        "schedule.name": {"grid": ["constant", "step", "cosine"]},
        "batch_size": {"grid": [32, 64]},
        "optimizer.lr": {"loguniform": [1e-4, 0.3]},
    }))
    assert spec.grid_size == 6 and spec.trial_count == 12


def test_resolved_spec_is_plain_data():
    spec = spec_from_mapping(with_(search_space={"batch_size": {"choice": [32, 64]}}))
    resolved = spec.resolved()
    assert resolved["search_space"] == {"batch_size": {"choice": [32, 64]}}
    assert resolved["scheduler"]["name"] == "asha"
    assert spec_from_mapping(resolved) == spec  # the resolved spec reloads to the same spec


def test_warm_start_is_validated_recorded_and_shown_in_the_plan():
    from orchestrator.cli.common import plan_text

    spec = spec_from_mapping(with_(warm_start={"from": "earlier", "storage": "s3://b/sweeps"}))
    assert spec.resolved()["warm_start"] == {"from": "earlier", "storage": "s3://b/sweeps",
                                             "rerun_best": 1}
    assert spec_from_mapping(spec.resolved()) == spec
    # (read when `sweep run` starts: tests/test_warm_start.py; a plan without it, as a
    # resumed sweep's, names the source)
    assert "warm start  from earlier in s3://b/sweeps\n" in plan_text(spec) + "\n"
    # the same name in another storage is another sweep
    assert spec_from_mapping(with_(warm_start={"from": "t", "storage": "/elsewhere"}))
    # a spec without one records none: sweep.json as before
    assert "warm_start" not in spec_from_mapping(MINIMAL).resolved()


# -- property: any mapping gives a spec or the project's own error ----------------
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=True),
                    st.text(max_size=8))
keys = st.sampled_from(["name", "metric", "mode", "num_samples", "seed", "train", "search_space",
                        "scheduler", "searcher", "resources", "failure", "storage", "epochs",
                        "optimizer.lr", "batch_size", "model.depth", "name.x", "lr",
                        "uniform", "choice", "grid", "randint", "loguniform", "dataset",
                        "warm_start", "from", "rerun_best"])
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=4)), max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, values, max_size=6))
def test_random_mappings_give_spec_or_spec_error(data):
    try:
        spec_from_mapping(data, "fuzz.yaml")
    except SpecError as err:
        assert str(err).startswith("fuzz.yaml: ")
        assert "\n" not in str(err)


# -- the three parsing defects of issue 6 --------------------------------------

def test_only_plain_scalars_are_read_as_exponent_floats(tmp_path):
    text = yaml.safe_dump(with_(train={"dataset": {"name": "table", "path": "x.csv",
                                                   "label": "PLACEHOLDER"}}))
    text = text.replace("PLACEHOLDER", '"2e3"').replace("name: t\n", 'name: "1e5"\n')
    text += "search_space:\n  optimizer.lr: {loguniform: [1e-4, 3E-1]}\n"
    spec = load_spec(write(tmp_path, text))
    assert spec.name == "1e5"  # quoted: a string, not 100000.0
    assert spec.train.dataset.label == "2e3"
    assert spec.search_space["optimizer.lr"].args == (1e-4, 0.3)  # plain: numbers
    assert yaml.safe_load("a: 1e-3") == {"a": "1e-3"}  # PyYAML's own loader is untouched


def test_cross_field_rules_hold_for_every_way_in():
    from pydantic import ValidationError

    from orchestrator.spec.model import SweepSpec

    for bad in ({"name": "t", "metric": "val_loss", "mode": "max"},
                {"name": "t", "searcher": {"name": "grid"},
                 "search_space": {"optimizer.lr": {"uniform": [0.1, 0.2]}}},
                {"name": "t", "search_space": {"nope": {"choice": [1]}}},
                {"name": "t", "scheduler": {"name": "asha", "grace_period": 50}}):
        with pytest.raises(ValidationError):
            SweepSpec.model_validate(bad)


def test_scheduler_and_searcher_are_typed_by_name():
    from orchestrator.engine.schedulers import AshaOptions, PbtOptions
    from orchestrator.engine.searchers import OptunaOptions

    spec = spec_from_mapping(with_(scheduler={"grace_period": 2},
                                   searcher={"name": "optuna", "n_startup_trials": 3}))
    assert isinstance(spec.scheduler, AshaOptions) and spec.scheduler.grace_period == 2
    assert isinstance(spec.searcher, OptunaOptions) and spec.searcher.n_startup_trials == 3
    pbt = spec_from_mapping(with_(scheduler={"name": "pbt"},
                                  search_space={"optimizer.lr": {"uniform": [0.1, 0.2]}}))
    assert isinstance(pbt.scheduler, PbtOptions)
    # the resolved spec loads back into the same spec (sweep.json -> resume)
    assert spec_from_mapping(spec.resolved()) == spec
    assert spec_from_mapping(pbt.resolved()) == pbt
