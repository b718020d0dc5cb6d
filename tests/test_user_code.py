"""Users' own models and data in the shared trainable, without Ray: the spec checks of
their factories, the trainer on their tensors and Datasets (classification and
regression), exact restores on the Dataset path, and what travels with their code."""

from __future__ import annotations

import copy

import pytest
import torch
import yaml

from orchestrator.spec import load_spec, spec_from_mapping
from orchestrator.spec.settings import TrialConfig
from orchestrator.spec.shipped_code import code_digest
from orchestrator.spec.user_code import code_folders, import_ref
from orchestrator.trainable.trainer import Trainer
from tests.helpers import REPO, invoke
from tests.user_project import write_project


def trial_config(spec_path, **train_changes) -> TrialConfig:
    spec = load_spec(spec_path)
    train = spec.train.model_dump(mode="json")
    for key, value in train_changes.items():
        train[key] = value if not isinstance(value, dict) else {**train[key], **value}
    return TrialConfig(train=train, objective={"metric": spec.metric, "mode": spec.mode},
                       seed=spec.seed, code={"folders": spec.code})


def history(trainer: Trainer, metric_names=("train_loss", "val_loss", "val_acc")) -> list:
    rows = []
    while not trainer.finished:
        row = trainer.train_epoch()
        rows.append({k: row[k] for k in ("epoch", *metric_names, "lr")})
    return rows


# -- the spec's checks, before Ray -----------------------------------------------------

def error_line(*args: str) -> tuple[int, str]:
    result = invoke(*args)
    return result.exit_code, result.stderr.strip()


def test_a_project_beside_its_spec_validates_and_its_folder_is_the_code(tmp_path):
    path = write_project(tmp_path / "proj")
    spec = load_spec(path)
    assert spec.code == (str((tmp_path / "proj").resolve()),)
    result = invoke("validate", str(path))
    assert result.exit_code == 0 and "my_models:build (yours)" in result.stdout


def test_code_folders_are_shipped_and_the_spec_folder_only_when_needed(tmp_path):
    path = write_project(tmp_path / "proj", code_dir="src")
    assert load_spec(path).code == (str((tmp_path / "proj" / "src").resolve()),)
    # a module found in a code folder does not bring the spec's folder along
    assert code_folders(["my_models:build"], [str(tmp_path / "proj" / "src")],
                        tmp_path / "proj") == [str(tmp_path / "proj" / "src")]


def test_the_data_factory_is_never_called_in_the_driver(tmp_path):
    marker = tmp_path / "called"
    path = write_project(tmp_path / "proj")
    code, _ = error_line("validate", str(path), "--set",
                         f"train.dataset.called={marker}")
    assert code == 0 and not marker.exists()


@pytest.mark.parametrize("change, message", [
    ({"train.model.factory": "nope:build"},
     "train.model.factory: cannot import 'nope' (ModuleNotFoundError: No module named "
     "'nope')"),
    ({"train.model.factory": "my_models:missing"},
     "train.model.factory: module 'my_models' has no attribute 'missing'"),
    ({"train.dataset.factory": "my_data:Rows.classes"},
     "train.dataset.factory: my_data:Rows.classes is a list, not a callable"),
    ({"train.model.factory": "my models"},
     "train.model.factory: is 'my models', but must name a callable as 'module:attr'"),
    ({"search_space.model.depth": {"choice": [1, 2]}},
     "search_space.model.depth: is not an argument of build (it takes: width, dropout)"),
    ({"train.dataset.rows": 5},
     "train.dataset.rows: is not an argument of load (it takes: n, features, kind, task, "
     "called)"),
    ({"metric": "val_r2"},
     "metric: is 'val_r2', but a classification reports val_acc, val_loss, train_loss"),
    ({"train.loss": "mse"},
     "train: loss is 'mse', but a classification takes one of: cross_entropy"),
])
def test_bad_references_are_one_line_exit_2(tmp_path, change, message):
    path = write_project(tmp_path / "proj")
    data = yaml.safe_load(path.read_text())
    for key, value in change.items():
        if key.startswith("search_space."):
            data["search_space"][key.removeprefix("search_space.")] = value
            continue
        *parents, leaf = key.split(".")
        target = data
        for part in parents:
            target = target[part]
        target[leaf] = value
    path.write_text(yaml.safe_dump(data))
    code, out = error_line("validate", str(path))
    assert code == 2
    assert out.startswith(f"error: {path}: {message}"), out
    assert "\n" not in out and "Traceback" not in out


def test_a_set_key_the_factory_does_not_take_blames_set(tmp_path):
    path = write_project(tmp_path / "proj")
    code, out = error_line("validate", str(path), "--set", "train.model.depth=3")
    assert code == 2 and out == ("error: --set: train.model.depth: is not an argument of "
                                 "build (it takes: width, dropout)")


def test_a_factory_with_kwargs_takes_any_setting(tmp_path):
    path = write_project(tmp_path / "proj")
    (tmp_path / "proj" / "my_models.py").write_text(
        "from torch import nn\n\ndef build(input_shape, num_outputs, **settings):\n"
        "    return nn.Linear(input_shape[0], num_outputs)\n")
    code, _ = error_line("validate", str(path), "--set", "train.model.anything=3")
    assert code == 0


def test_a_module_of_the_same_name_in_another_project_is_not_reused(tmp_path):
    first = write_project(tmp_path / "a")
    second = write_project(tmp_path / "b")
    (tmp_path / "b" / "my_models.py").write_text("def build(input_shape, num_outputs, "
                                                 "depth=1):\n    pass\n")
    load_spec(first)
    with pytest.raises(Exception, match="model.width: is not an argument of build"):
        load_spec(second)
    assert import_ref("my_models:build", "k", [tmp_path / "b"]).__code__.co_varnames[2] == \
        "depth"


def test_code_digest_skips_environments_and_refuses_too_much(tmp_path, monkeypatch):
    folder = tmp_path / "code"
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg" / "m.py").write_text("x = 1\n")
    before = code_digest([str(folder)])
    for skipped in (".git/objects", "venv", "__pycache__", "old/results"):
        (folder / skipped).mkdir(parents=True)
    (folder / ".git" / "objects" / "blob").write_bytes(b"x" * 1000)
    (folder / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (folder / "old" / "results" / "sweep.json").write_text("{}")
    assert code_digest([str(folder)]) == before  # none of those travel
    (folder / "pkg" / "m.py").write_text("x = 2\n")
    assert code_digest([str(folder)])[0] != before[0]  # a change of the code shows

    import orchestrator.spec.shipped_code as shipped_code
    from orchestrator.spec.user_code import UserCodeError
    monkeypatch.setattr(shipped_code, "MAX_CODE_BYTES", 4)
    with pytest.raises(UserCodeError, match="code: the code folders .* hold 0 MiB, more "
                                            "than 0 MiB"):
        code_digest([str(folder)])


def test_a_job_package_carries_the_code_as_its_own_folders(tmp_path):
    from orchestrator.jobs.staging import package_job

    spec = load_spec(write_project(tmp_path / "proj", code_dir="src"))
    package = tmp_path / "package"
    package.mkdir()
    written = package_job(spec, "/shared/sweeps", package)
    assert written["code"] == ["code/0"]
    assert (package / "code" / "0" / "my_models.py").is_file()
    # the job reads it back against its own folder, with nothing of this machine
    (package / "spec.yaml").write_text(yaml.safe_dump(written))
    assert load_spec(package / "spec.yaml").code == (str((package / "code" / "0").resolve()),)


# -- the trainer on the user's data and model --------------------------------------------

def test_user_tensors_train_as_a_classification(tmp_path):
    trainer = Trainer(trial_config(write_project(tmp_path / "p")))
    rows = history(trainer)
    assert len(rows) == 3 and rows[-1]["val_acc"] > 0.8
    report = trainer.metrics(lr=0.01, epoch_s=0.0)
    assert report["chance_val_acc"] == pytest.approx(0.5, abs=0.15)
    assert report["diagnosis"] and report["diagnosis_reason"]


@pytest.mark.parametrize("kind", ["tensors", "dataset"])
def test_a_regression_reports_mae_and_r2_against_the_training_mean(tmp_path, kind):
    config = trial_config(write_project(tmp_path / "p", kind=kind, task="regression"),
                          epochs=2)
    trainer = Trainer(config)
    rows = history(trainer, ("train_loss", "val_loss", "val_mae", "val_r2"))
    from tests.user_project import DATA

    namespace: dict = {}
    exec(DATA, namespace)  # the user's data, loaded here to check by hand
    (x_train, y_train), (x_val, y_val) = (tuple(s.tensors) if kind == "dataset" else s
                                          for s in namespace["load"](config.seed, kind=kind,
                                                                     task="regression"))
    with torch.no_grad():
        trainer.model.eval()
        predicted = trainer.model(x_val).squeeze(-1)
    mean = y_train.double().mean()
    r2 = 1 - ((predicted - y_val).double() ** 2).sum() / ((y_val - mean) ** 2).sum()
    assert rows[-1]["val_r2"] == pytest.approx(float(r2), rel=1e-5)
    assert rows[-1]["val_mae"] == pytest.approx(float((predicted - y_val).abs().mean()),
                                                rel=1e-5)
    assert rows[-1]["val_loss"] == pytest.approx(float(((predicted - y_val) ** 2).mean()),
                                                 rel=1e-5)
    chance = trainer.metrics(lr=0.0, epoch_s=0.0)
    assert chance["chance_val_loss"] == pytest.approx(float(((y_val - mean) ** 2).mean()),
                                                      rel=1e-5)
    assert chance["chance_val_acc"] is None and rows[-1]["val_r2"] > 0.5


def test_the_dataset_path_trains_exactly_as_the_tensor_path(tmp_path):
    """A DataLoader over the same rows draws the same permutation from the same
    generator: the two paths give the same curves."""
    tensors = history(Trainer(trial_config(write_project(tmp_path / "t"))))
    dataset = history(Trainer(trial_config(write_project(tmp_path / "d", kind="dataset"))))
    assert dataset == tensors


def test_the_dataset_path_restores_exactly(tmp_path):
    config = trial_config(write_project(tmp_path / "p", kind="dataset"), epochs=4,
                          model={"dropout": 0.3})
    straight = history(Trainer(config))
    first = Trainer(config)
    first.train_epoch(), first.train_epoch()
    first.save(tmp_path)
    torch.manual_seed(12345)  # disturb every generator the restore must bring back
    restored = Trainer(config)
    restored.load(tmp_path)
    assert history(restored) == straight[2:]


def test_a_factory_returning_the_wrong_thing_says_what_it_must_return(tmp_path):
    from orchestrator.trainable.user_data import UserDataError

    path = write_project(tmp_path / "p")
    (tmp_path / "p" / "my_data.py").write_text("def load(seed, **kw):\n    return [1, 2, 3]\n")
    with pytest.raises(UserDataError, match="returned a list: it must return"):
        Trainer(trial_config(path))


def test_fractional_classification_labels_are_refused_not_truncated(tmp_path):
    from orchestrator.trainable.user_data import UserDataError

    path = write_project(tmp_path / "p")
    (tmp_path / "p" / "my_data.py").write_text(
        "import torch\n\ndef load(seed, **kw):\n"
        "    x, y = torch.randn(40, 6), torch.rand(40) * 2\n"
        "    return (x[:30], y[:30]), (x[30:], y[30:])\n")
    with pytest.raises(UserDataError, match="labels must be whole numbers"):
        Trainer(trial_config(path))


def test_resnet_honours_norm_none():
    from orchestrator.spec.settings import ModelConfig
    from orchestrator.trainable.models import build_model

    def norms(norm: str) -> set[str]:
        model = build_model(ModelConfig(name="resnet", depth=2, channels=4, norm=norm),
                            (1, 8, 8), 10)
        return {type(m).__name__ for m in model.modules() if "Norm" in type(m).__name__}

    assert norms("none") == set()
    assert norms("batch") == {"BatchNorm2d"}
    assert norms("layer") == {"GroupNorm"}


def test_the_resolved_spec_loads_back_with_its_code(tmp_path):
    spec = load_spec(write_project(tmp_path / "p", task="regression"))
    again = spec_from_mapping(copy.deepcopy(spec.resolved()))
    assert again == spec and again.metric == "val_loss" and again.mode == "min"


def test_resume_warns_when_the_code_changed_since_the_sweep_began(tmp_path):
    from orchestrator.engine.resume import plan_resume
    from orchestrator.engine.shipping import code_hash
    from orchestrator.results.provenance import begin_segment
    from orchestrator.results.storage import as_location

    spec = load_spec(write_project(tmp_path / "proj"))
    folder = tmp_path / "sweeps" / spec.name
    begin_segment(folder / "results", spec.resolved(), "run", code_hash=code_hash(spec))
    (folder / "tuner.pkl").write_bytes(b"")  # what Tune leaves: the plan only looks
    (folder / "experiment_state-0.json").write_text("{}")
    assert plan_resume(as_location(folder)).warnings == ()
    (tmp_path / "proj" / "my_models.py").write_text("def build(input_shape, num_outputs, "
                                                    "width=16, dropout=0.0):\n    pass\n")
    warnings = plan_resume(as_location(folder)).warnings
    assert len(warnings) == 1 and "has changed since this sweep started" in warnings[0]


def test_lr_find_runs_on_a_user_model_and_dataset(tmp_path):
    import json

    path = write_project(tmp_path / "p", kind="dataset")
    result = invoke("lr-find", str(path), "--steps", "20", "--out", str(tmp_path / "lr"),
                    "--json")
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["steps_run"] >= 10 and found["suggested_lr"] > 0
    assert (tmp_path / "lr" / "lr_find.parquet").is_file()


@pytest.mark.parametrize("example", sorted(p.parent.name for p in
                                           (REPO / "examples").glob("*/spec.yaml")))
def test_every_example_project_validates_from_its_own_folder(example, monkeypatch):
    """The user projects in examples/ (their specs name their code), checked as a user
    would, from the project's folder: factories and loops import, arguments fit."""
    monkeypatch.chdir(REPO / "examples" / example)
    result = invoke("validate", "spec.yaml")
    assert result.exit_code == 0, result.stderr
    assert "(yours)" in result.stdout


# -- the data's faults named as the data's: NaN or inf, labels that are not classes -------

DATA_HEAD = '''
import torch
from torch.utils.data import TensorDataset


class Rows(TensorDataset):
    classes = list(range(10))


def load(seed, kind="tensors", task="classification", num_classes=None):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g)
    y = torch.randint(0, 10, (200,), generator=g) if task == "classification" else x[:, 0] * 2
'''
DATA_TAIL = '''
    train, val = (x[:160], y[:160]), (x[160:], y[160:])
    return (Rows(*train), Rows(*val)) if kind == "dataset" else (train, val)
'''


def faulty_data(tmp_path, fault: str, kind: str, task: str = "classification",
                **train_changes) -> TrialConfig:
    path = write_project(tmp_path / "p", kind=kind, task=task)
    (tmp_path / "p" / "my_data.py").write_text(DATA_HEAD + fault + DATA_TAIL)
    return trial_config(path, **train_changes)


@pytest.mark.parametrize("fault, kind, task, line", [
    ("    x[17, 3] = float('nan')\n", "tensors", "classification",
     "train x holds nan at row 17, feature 3: the data is not finite (not a divergence of "
     "the training); fix or drop those values"),
    ("    x[170, 2] = float('inf')\n", "tensors", "regression",
     "val x holds inf at row 10, feature 2: the data is not finite"),
    ("    y = y.clone(); y[4] = float('-inf')\n", "tensors", "regression",
     "train y holds -inf at row 4: the data is not finite"),
    # a Dataset: found when the loss went non-finite, in the batch that made it so
    ("    x[17, 3] = float('nan')\n", "dataset", "classification",
     "train[17]'s input holds nan at feature 3: the data is not finite (not a divergence "
     "of the training); fix or drop that example"),
    ("    x[170, 2] = float('inf')\n", "dataset", "classification",
     "val[10]'s input holds inf at feature 2: the data is not finite"),
    ("    y = y.clone(); y[30] = float('nan')\n", "dataset", "regression",
     "train[30]'s target holds nan: the data is not finite"),
], ids=["tensors-train-x", "tensors-val-x", "tensors-train-y", "dataset-train-x",
        "dataset-val-x", "dataset-train-y"])
def test_non_finite_data_is_named_as_the_datas_not_read_as_a_divergence(
        tmp_path, fault, kind, task, line):
    from orchestrator.trainable.not_retried import DataOrCodeError
    from orchestrator.trainable.user_data import UserDataError

    config = faulty_data(tmp_path, fault, kind, task)
    with pytest.raises(UserDataError) as raised:
        history(Trainer(config))
    assert str(raised.value).startswith(f"train.dataset.factory: {line}"), raised.value
    assert isinstance(raised.value, DataOrCodeError)  # not retried, even after a report


def test_a_real_divergence_on_a_dataset_still_reads_diverged(tmp_path):
    """Finite data, a rate far too large: the batch is looked at, found finite, and the
    trial ends `diverged` as before."""
    config = faulty_data(tmp_path, "", "dataset", "regression",
                         optimizer={"name": "sgd", "lr": 1e12})
    trainer = Trainer(config)
    rows = history(trainer, ("train_loss", "val_loss"))
    assert trainer.stop_reason == "diverged" and len(rows) == 1


@pytest.mark.parametrize("fault, kind, changes, line", [
    # labels 1..10: the class count would be 11, class 0 never a label
    ("    y = y + 1\n", "tensors", {},
     "train label 10 at row 2 would make 11 classes, but no label is 0: labels must be "
     "class indices 0..K-1 (the class count is the largest label + 1, or set "
     "train.dataset.num_classes)"),
    ("    y = y.clone(); y[165] = 255\n", "tensors", {},
     "val label 255 at row 5 would make 256 classes, but no label is in 10..254"),
    ("    y = y.clone(); y[12] = -1\n", "tensors", {},
     "train label -1 at row 12 is outside [0, 10) (class indices from 0)"),
    # 10 among 0..9 leaves no gap: only the declared count tells it is not a class
    ("    y = y.clone(); y[7] = 10\n", "tensors", {"num_classes": 10},
     "train label 10 at row 7 is outside [0, 10) (train.dataset.num_classes is 10)"),
    ("    y = y.clone(); y[7] = 10\n", "dataset", {},
     "train[7] has label 10, outside [0, 10) (the Dataset's 10 classes): labels must be "
     "class indices 0..9"),
    ("    y = y.clone(); y[199] = -3\n", "dataset", {},
     "val[39] has label -3, outside [0, 10) (the Dataset's 10 classes)"),
], ids=["tensors-1-based", "tensors-255", "tensors-negative", "tensors-declared",
        "dataset-train", "dataset-val-negative"])
def test_labels_that_are_not_class_indices_are_one_line(tmp_path, fault, kind, changes,
                                                         line):
    from orchestrator.trainable.user_data import UserDataError

    config = faulty_data(tmp_path, fault, kind, dataset={"kind": kind, **changes})
    with pytest.raises(UserDataError) as raised:
        history(Trainer(config))
    assert str(raised.value).startswith(f"train.dataset.factory: {line}"), raised.value


def test_a_declared_class_count_is_the_count(tmp_path):
    """`num_classes` given to the factory is the class count, a class no label names
    included; without it the count is the largest label + 1."""
    declared = Trainer(faulty_data(tmp_path / "a", "", "tensors",
                                   dataset={"num_classes": 12}))
    assert declared.data.num_outputs == 12
    assert Trainer(faulty_data(tmp_path / "b", "", "tensors")).data.num_outputs == 10
