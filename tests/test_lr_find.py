"""`sweep lr-find`: the LR range test through the real console script (no Ray; slow),
and a few epochs at its suggestion train well; its bad options in-process."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from orchestrator.spec.model import load_spec
from orchestrator.spec.settings import TrialConfig
from orchestrator.trainable.lr_find import suggestion
from orchestrator.trainable.trainer import Trainer
from tests.helpers import REPO, invoke, sweep_cli

QUICKSTART = str(REPO / "search_spaces" / "digits_mlp_asha.yaml")


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_few_epochs_at_the_suggested_rate_reach_90_percent(tmp_path, optimizer):
    result = sweep_cli("lr-find", QUICKSTART, "--json", "--out", str(tmp_path),
                       "--set", f"train.optimizer.name={optimizer}")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    low, high = found["range"]
    assert low < found["suggested_lr"] <= high
    # with sqrt batch scaling (batch 64, reference 32) the optimiser runs sqrt(2) faster
    assert found["effective_lr"] == pytest.approx(found["suggested_lr"] * 2**0.5)
    assert found["search_space"].startswith("optimizer.lr: {loguniform: [")
    curve = pd.read_parquet(tmp_path / "lr_find.parquet")
    assert list(curve.columns) == ["step", "lr", "loss", "smoothed_loss"]
    assert curve["lr"].is_monotonic_increasing and len(curve) == found["steps_run"]
    assert (tmp_path / "lr_find.png").stat().st_size > 10_000

    spec = load_spec(QUICKSTART, [f"train.optimizer.name={optimizer}", "train.epochs=5",
                                  f"train.optimizer.lr={found['suggested_lr']}"])
    trainer = Trainer(TrialConfig(train=spec.train, seed=1), 0)
    while not trainer.finished:
        trainer.train_epoch()
    assert max(trainer.curves["val_acc"]) >= 0.9


def test_the_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = np.logspace(-5, 1, 61)
    x = np.log10(lrs)
    # flat, a fall steepest at 1e-2, a minimum at 1e-1, then a blow-up
    losses = 2.3 - 1.0 / (1 + np.exp(-(x + 2) * 4)) + np.where(x > -1, (x + 1) ** 2 * 5, 0)
    steep, lowest = suggestion(lrs, losses)
    assert lrs[steep] == pytest.approx(1e-2, rel=0.3)
    assert lrs[lowest] == pytest.approx(10 ** -0.9, rel=0.3)


@pytest.mark.parametrize("args, message", [
    (["--min-lr", "1", "--max-lr", "0.1"], "error: --min-lr, --max-lr: are 1 and 0.1, but must "
                                           "be 0 < min-lr < max-lr"),
    (["--steps", "5"], "error: --steps: is 5, but must be >= 20"),
])
def test_bad_options_are_one_line(tmp_path, args, message):
    result = invoke("lr-find", QUICKSTART, "--out", str(tmp_path), *args)
    assert result.exit_code == 2 and result.stderr == message + "\n"
    assert not list(tmp_path.iterdir())  # nothing written
