"""The training's own signals (trainable/signals.py): what is measured, on which steps,
in which epoch's row; and their mechanisms as the practice names them (../shared/TUNING.md,
"Reading the training itself"), in orders of magnitude: a deep tanh or sigmoid net without
normalisation vanishes in its first layers, a rate far too high grows the gradient norm
by orders before the loss diverges, a tiny rate makes updates orders below the 1e-3
yardstick. These document the signals for the diagnosis that reads them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from orchestrator.results import schema
from orchestrator.spec.settings import SIGNALS, ModelConfig, TrialConfig
from orchestrator.trainable.models import build_model
from orchestrator.trainable.signals import MIN_WEIGHT_LAYERS, SAMPLE_EVERY, Signals, weight_layers
from orchestrator.trainable.trainer import Trainer


def trainer_config(depth=2, activation="relu", lr=0.05, optimizer="sgd", norm="none",
                   epochs=2, clip=None, hidden=64, momentum=0.9, batch_size=64,
                   **train) -> TrialConfig:
    return TrialConfig.model_validate({"train": {
        "dataset": {"name": "digits"}, "epochs": epochs, "batch_size": batch_size,
        "model": {"name": "mlp", "hidden": hidden, "depth": depth, "activation": activation,
                  "norm": norm},
        "optimizer": {"name": optimizer, "lr": lr, "momentum": momentum, "grad_clip": clip},
        "early_stopping": {"patience": None}, **train}})


def run(config: TrialConfig, **kwargs) -> list[dict]:
    trainer = Trainer(config, **kwargs)
    rows = []
    while not trainer.finished:
        rows.append(trainer.train_epoch())
    return rows


# -- what is measured ----------------------------------------------------------

def test_weight_layers_are_the_linear_and_conv_weights_in_order_not_the_norms():
    mlp = build_model(ModelConfig(depth=3, norm="batch"), (64,), 10)
    layers = weight_layers(mlp)
    assert [tuple(w.shape) for w in layers] == [(128, 64), (128, 128), (128, 128), (10, 128)]
    cnn = build_model(ModelConfig(name="cnn", depth=2, norm="layer", channels=4), (1, 8, 8), 10)
    assert [w.dim() for w in weight_layers(cnn)] == [4, 4, 2]
    assert MIN_WEIGHT_LAYERS == 3


def test_one_measured_step_by_hand():
    """Every step measured: the norm of all gradients before clipping, the first weight
    layer's against the last's, and the update against the weights it started from."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 7), nn.Tanh(),
                          nn.Linear(7, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    signals = Signals(model, every=1)
    grads, ratios, updates = [], [], []
    for _ in range(3):
        loss = nn.functional.cross_entropy(model(torch.randn(16, 5)), torch.randint(0, 3, (16,)))
        opt.zero_grad()
        loss.backward()
        assert signals.due()
        signals.gradients()
        flat = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        grads.append(flat.norm().item())
        ratios.append((model[0].weight.grad.norm() / model[4].weight.grad.norm()).item())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1e-3)  # measured before this
        signals.before_step()
        before = torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])
        opt.step()
        signals.after_step()
        after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        updates.append(((after - before).norm() / before.norm()).item())
    read = signals.read()
    assert read["grad_norm"] == pytest.approx(np.mean(grads), rel=1e-5)
    assert read["grad_norm_max"] == pytest.approx(max(grads), rel=1e-5)
    assert read["update_ratio"] == pytest.approx(np.median(updates), rel=1e-4)
    assert read["grad_norm_ratio"] == pytest.approx(np.median(ratios), rel=1e-5)
    assert min(grads) > 1e-3  # so the clip did cut them: the values are before it
    assert signals.read() == dict.fromkeys(SIGNALS)  # a fresh epoch: nothing measured


def test_steps_are_sampled_every_k_from_the_first_and_shallow_nets_have_no_ratio():
    signals = Signals(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    assert signals.ends is None  # two weight layers: below MIN_WEIGHT_LAYERS
    due = [signals.due() for _ in range(2 * SAMPLE_EVERY + 1)]
    assert [i for i, d in enumerate(due) if d] == [0, SAMPLE_EVERY, 2 * SAMPLE_EVERY]
    signals.reset()
    assert signals.due()  # an epoch's first step is always measured


def test_a_non_finite_gradient_is_the_max_and_left_out_of_the_mean():
    model = nn.Linear(2, 1)
    signals = Signals(model, every=1)
    for value in (1.0, math.inf, 3.0):
        model.weight.grad = torch.full_like(model.weight, value)
        model.bias.grad = torch.zeros_like(model.bias)
        signals.gradients()
    read = signals.read()
    assert read["grad_norm_max"] == math.inf
    assert read["grad_norm"] == pytest.approx((math.sqrt(2) + 3 * math.sqrt(2)) / 2)
    assert read["update_ratio"] is None and read["grad_norm_ratio"] is None


def test_every_epoch_row_of_the_trainer_carries_the_signals_and_training_is_unchanged():
    config = trainer_config(depth=3, epochs=2, clip=0.05, hidden=32)
    with_signals = run(config)
    without = run(config, signals=False)
    for row in with_signals:
        assert all(row[s] is not None and math.isfinite(row[s]) for s in SIGNALS), row
        # measured before the clip: the epochs' gradients are larger than the clip
        assert row["grad_norm_max"] >= row["grad_norm"] > 0.05
    assert all(row[s] is None for row in without for s in SIGNALS)
    # measuring changes nothing in the training itself, bit for bit
    for a, b in zip(with_signals, without):
        assert (a["train_loss"], a["val_loss"]) == (b["train_loss"], b["val_loss"])
    assert set(SIGNALS) <= set(schema.HISTORY_COLUMNS)


def test_a_net_of_two_weight_layers_has_no_grad_norm_ratio():
    rows = run(trainer_config(depth=1, epochs=1))
    assert rows[0]["grad_norm"] > 0 and rows[0]["grad_norm_ratio"] is None


def test_sigmoid_is_an_activation_of_the_built_in_models():
    model = build_model(ModelConfig(depth=2, activation="sigmoid"), (4,), 3)
    assert sum(isinstance(m, nn.Sigmoid) for m in model) == 2
    out = model(torch.randn(5, 4))
    assert out.shape == (5, 3)


# -- the mechanisms, in orders of magnitude ------------------------------------

@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_a_deep_net_without_normalisation_vanishes_in_its_first_layers(activation):
    """20 hidden layers of tanh (or sigmoid) without normalisation on the digits: the
    first layer's gradient orders of magnitude below the last's (tanh ~1e-4, sigmoid
    ~1e-17), and more than three orders below a 2-layer net's of the same activation
    (tanh ~1, sigmoid ~0.03: each sigmoid divides by 4 or more); the deep net is at the
    chance loss (ln 10 = 2.30) after its epoch where the 2-layer tanh net has learned.
    With batch norm the deep tanh net's ratio is back near 1."""
    def first_epoch(depth, norm="none"):
        config = trainer_config(depth=depth, activation=activation, norm=norm, epochs=1,
                                hidden=32)
        return run(config)[0]

    deep, shallow = first_epoch(20), first_epoch(2)
    assert deep["grad_norm_ratio"] < 1e-3
    assert deep["grad_norm_ratio"] < 1e-3 * shallow["grad_norm_ratio"]
    assert deep["val_loss"] > 2.2  # ln 10 = 2.303: at chance
    if activation == "tanh":
        assert shallow["val_loss"] < 2.1
        assert 0.1 < first_epoch(20, norm="batch")["grad_norm_ratio"] < 100


@pytest.fixture(scope="module")
def line(tmp_path_factory) -> str:
    """A small regression table: 120 rows of y = x . w + noise (6 steps an epoch at
    batch 16)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6))
    y = x @ rng.normal(size=6) + rng.normal(0, 0.1, 120)
    path = tmp_path_factory.mktemp("line") / "line.csv"
    pd.DataFrame(np.column_stack([x, y]), columns=[*"abcdef", "y"]).to_csv(path, index=False)
    return str(path)


def regression(path: str, lr: float, epochs: int = 15) -> TrialConfig:
    return TrialConfig.model_validate({
        "objective": {"metric": "val_loss", "mode": "min"},
        "train": {"task": "regression", "epochs": epochs, "batch_size": 16,
                  "dataset": {"name": "table", "path": path, "label": "y"},
                  "model": {"name": "mlp", "hidden": 16, "depth": 1, "activation": "tanh"},
                  "optimizer": {"name": "sgd", "lr": lr, "momentum": 0.0},
                  "early_stopping": {"patience": None}}})


def test_a_rate_far_too_high_grows_the_gradient_norm_by_orders_before_diverging(line):
    """Plain SGD on a small regression: at 0.1 the gradient norm stays within an order
    of its first epoch's; at 1.0 (ten times higher) it grows by orders, epoch after
    epoch, until the loss is no longer finite."""
    healthy = run(regression(line, 0.1))
    high = run(regression(line, 1.0))
    assert healthy[-1]["stop_reason"] == "completed"
    assert max(r["grad_norm"] for r in healthy) < 10 * healthy[0]["grad_norm"]
    assert high[-1]["stop_reason"] == "diverged"
    norms = [r["grad_norm"] for r in high[:-1]]
    assert len(norms) >= 2 and norms[-1] > 1e3 * norms[0]
    assert all(b > a for a, b in zip(norms, norms[1:]))


def test_a_tiny_rate_makes_updates_orders_below_the_yardstick():
    """The size of each update against the weights: about 1e-3 is the healthy yardstick;
    SGD at 1e-6 moves them by ~1e-7 a step, Adam at 1e-3 by ~1e-2..1e-3."""
    tiny = run(trainer_config(lr=1e-6, momentum=0.0, epochs=1))
    adam = run(trainer_config(lr=1e-3, optimizer="adam", epochs=1))
    assert tiny[0]["update_ratio"] < 1e-5
    assert 1e-4 < adam[0]["update_ratio"] < 1e-1


# -- a user's own loop: trial.watch -----------------------------------------------

def watched_loop(monkeypatch, watch: bool, clip: float | None = None, epochs: int = 2):
    """A user's loop (plain PyTorch, 20 steps an epoch) run with a real `Trial`; only
    Tune's report is caught (the real sweep: test_a_loop_with_watch_has_the_signals_in_
    its_history, slow). Returns the reported rows."""
    from orchestrator.spec.settings import LoopTrialConfig
    from orchestrator.trainable import loop

    reported: list[dict] = []
    monkeypatch.setattr(loop.tune, "report", reported.append)
    monkeypatch.setattr(loop, "_node_id", lambda: None)
    config = LoopTrialConfig.model_validate({
        "train": {"function": "my_loop:train", "epochs": epochs},
        "objective": {"metric": "val_loss", "mode": "min"}})
    trial = loop.Trial(config, "t_00000", "cpu", 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                          nn.Linear(32, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    if watch:
        trial.watch(model, opt)
    x = torch.randn(640, 8)
    y = (x[:, 0] > 0).long()
    for epoch in range(1, epochs + 1):
        for idx in torch.randperm(len(x)).split(32):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
        trial.report(epoch=epoch, val_loss=loss.item())
    return reported


def test_watch_records_the_signals_with_each_report_and_without_it_they_stay_null(
        monkeypatch):
    rows = watched_loop(monkeypatch, watch=True)
    assert len(rows) == 2
    for row in rows:
        assert 0 < row["grad_norm"] <= row["grad_norm_max"] < 100
        assert 1e-5 < row["update_ratio"] < 1
        assert 0 < row["grad_norm_ratio"] < 100
    assert all(row.get(s) is None for row in watched_loop(monkeypatch, watch=False)
               for s in SIGNALS)


def test_watch_reads_the_gradients_as_the_step_receives_them_after_the_loops_clip(
        monkeypatch):
    """In a loop of your own the clip runs before optimizer.step: the step's hooks see
    the clipped gradients (docs/own-loop.md)."""
    rows = watched_loop(monkeypatch, watch=True, clip=1e-3)
    assert all(row["grad_norm_max"] <= 1e-3 * 1.0001 for row in rows)


def test_a_loops_own_metric_cannot_take_a_signals_name(monkeypatch):
    from orchestrator.spec.settings import LoopTrialConfig
    from orchestrator.trainable import loop

    monkeypatch.setattr(loop, "_node_id", lambda: None)
    config = LoopTrialConfig.model_validate({
        "train": {"function": "my_loop:train", "epochs": 2},
        "objective": {"metric": "val_loss", "mode": "min"}})
    trial = loop.Trial(config, "t_00000", "cpu", 1)
    with pytest.raises(loop.ReportError, match="'grad_norm' is a name this tool reports"):
        trial.report(epoch=1, val_loss=1.0, grad_norm=3.0)
