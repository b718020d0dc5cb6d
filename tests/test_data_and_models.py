from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from orchestrator.errors import OrchestratorError
from orchestrator.spec.settings import DatasetConfig, ModelConfig
from orchestrator.trainable.data import load_dataset
from orchestrator.trainable.models import build_model


def test_digits_are_images_split_by_fraction():
    data = load_dataset(DatasetConfig(name="digits", val_fraction=0.25), seed=0)
    assert data.input_shape == (1, 8, 8)
    assert data.num_classes == 10
    total = len(data.x_train) + len(data.x_val)
    assert total == 1797 and len(data.x_val) == round(total * 0.25)
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0


def test_split_is_seeded_by_the_spec_seed():
    a = load_dataset(DatasetConfig(name="digits"), seed=1)
    b = load_dataset(DatasetConfig(name="digits"), seed=1)
    c = load_dataset(DatasetConfig(name="digits"), seed=2)
    assert torch.equal(a.y_val, b.y_val) and not torch.equal(a.y_val, c.y_val)


def test_synthetic_follows_its_settings():
    cfg = DatasetConfig(name="synthetic", n_samples=300, n_features=12, n_classes=4)
    data = load_dataset(cfg, seed=0)
    assert data.input_shape == (12,) and data.num_classes == 4
    assert len(data.x_train) + len(data.x_val) == 300


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_standardises_on_training_split(tmp_path, suffix):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(5, 3, 200), "b": rng.normal(-2, 0.1, 200),
                          "note": ["x"] * 200, "label": rng.choice(["cat", "dog"], 200)})
    path = tmp_path / f"data{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    data = load_dataset(DatasetConfig(name="table", path=str(path)), seed=0)
    assert data.input_shape == (2,) and data.num_classes == 2  # the text column is dropped
    assert torch.allclose(data.x_train.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(data.x_train.std(0), torch.ones(2), atol=1e-4)


def test_table_errors_name_the_problem(tmp_path):
    with pytest.raises(OrchestratorError, match="is not a file"):
        load_dataset(DatasetConfig(name="table", path=str(tmp_path / "missing.csv")), seed=0)
    path = tmp_path / "d.csv"
    pd.DataFrame({"a": [1.0, 2.0] * 10, "y": [0, 1] * 10}).to_csv(path, index=False)
    with pytest.raises(OrchestratorError, match="column 'label' is not in"):
        load_dataset(DatasetConfig(name="table", path=str(path)), seed=0)


def test_torchvision_dataset_without_files_says_how_to_get_them(tmp_path):
    pytest.importorskip("torchvision")
    with pytest.raises(OrchestratorError, match="download: true"):
        load_dataset(DatasetConfig(name="mnist", root=str(tmp_path)), seed=0)


def test_torchvision_missing_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torchvision(name, *args, **kwargs):
        if name == "torchvision":
            raise ImportError("no torchvision")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchvision)
    with pytest.raises(OrchestratorError, match=r"pip install -e '.\[vision\]'"):
        load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path)), seed=0)


@pytest.mark.parametrize("model", [
    {"name": "mlp", "depth": 3, "hidden": 16, "activation": "gelu", "norm": "layer",
     "dropout": 0.1},
    {"name": "mlp", "depth": 1, "hidden": 8, "activation": "tanh", "norm": "batch"},
    {"name": "cnn", "depth": 2, "channels": 4, "activation": "silu", "norm": "batch"},
    {"name": "resnet", "depth": 3, "channels": 4},
])
def test_models_map_images_to_class_logits(model):
    net = build_model(ModelConfig(**model), (1, 8, 8), 10)
    assert net(torch.zeros(5, 1, 8, 8)).shape == (5, 10)


def test_mlp_depth_counts_hidden_layers():
    net = build_model(ModelConfig(name="mlp", depth=3, hidden=16), (20,), 2)
    assert sum(isinstance(m, torch.nn.Linear) for m in net.modules()) == 4


def test_cnn_on_tabular_data_is_a_clear_error():
    with pytest.raises(OrchestratorError, match="needs image data"):
        build_model(ModelConfig(name="cnn"), (20,), 2)
