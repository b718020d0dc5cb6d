"""The live progress line (cli/progress.py), fed as Tune feeds it, without Ray."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from rich.console import Console

from orchestrator.cli.progress import ProgressView


def view(metric: str, mode: str) -> ProgressView:
    return ProgressView(Console(file=io.StringIO(), width=200), total=2, metric=metric,
                        mode=mode)


@pytest.mark.parametrize("metric, mode, values, best", [
    ("val_acc", "max", [0.6, 0.8, float("nan"), 0.7], "0.8"),
    ("f1", "max", [0.5, 0.9, 0.4], "0.9"),
    ("val_loss", "min", [0.9, 0.3, float("inf"), 0.5], "0.3"),
])
def test_a_loops_progress_line_shows_the_best_of_its_metric(metric, mode, values, best):
    """A user's loop reports its metric each epoch and no `best_<metric>`: the line shows
    the best epoch of any trial, not `-`, nor only each trial's last epoch."""
    progress = view(metric, mode)
    trials = [SimpleNamespace(trial_id=f"t_0000{i}", status="RUNNING", last_result={})
              for i in range(2)]
    for epoch, value in enumerate(values, 1):
        trial = trials[epoch % 2]
        trial.last_result = {"epoch": epoch, metric: value}
        progress.on_trial_result(epoch, trials, trial, trial.last_result)
    progress._tally(trials)
    assert f"best {metric} {best} ·" in progress.render().plain


def test_the_shared_trainables_best_column_still_counts():
    """A trial restored on resume brings its best so far in `best_<metric>`."""
    progress = view("val_acc", "max")
    trial = SimpleNamespace(trial_id="t_00000", status="TERMINATED",
                            last_result={"val_acc": 0.5, "best_val_acc": 0.75})
    progress._tally([trial])
    assert "best val_acc 0.75 ·" in progress.render().plain
