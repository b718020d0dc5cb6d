"""What the tests share besides fixtures (those stay in conftest.py): the repository, a
tiny spec and a slow one, the console script in a subprocess, the CLI in-process, and
the environment of a machine where Ray never ran. Tests import these from here, never
from conftest.py or from one another; tests/faults.py holds the helpers of fault tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import yaml

REPO = Path(__file__).resolve().parents[1]
# the console script `pip install -e .` put next to python
SWEEP = str(Path(sys.executable).with_name("sweep"))
# every subcommand of `sweep` (test_cli checks this list against the command group)
COMMANDS = ("validate", "run", "resume", "refine", "extend", "export", "report", "ls",
            "lr-find", "track", "submit", "jobs", "logs", "stop")

# slow_spec's trials and epochs
SLOW_TRIALS, SLOW_EPOCHS = 6, 8


def tiny_spec(tmp_path: Path, name: str = "tiny", **changes) -> dict:
    """A sweep of a few trials of a few epochs on the synthetic data set."""
    spec = {
        "name": name,
        "num_samples": 2,
        "seed": 3,
        "train": {
            "dataset": {"name": "synthetic", "n_samples": 300, "n_features": 8},
            "model": {"name": "mlp", "hidden": 16, "depth": 1},
            "epochs": 3,
            "batch_size": 32,
            "optimizer": {"name": "sgd", "lr": 0.05},
            "schedule": {"name": "cosine", "warmup_epochs": 1},
            "batch_scaling": {"rule": "sqrt", "reference_batch_size": 32},
        },
        "search_space": {"optimizer.lr": {"loguniform": [0.01, 0.3]},
                         "batch_size": {"choice": [16, 32]}},
        "scheduler": {"name": "fifo"},
        "storage": str(tmp_path / "sweeps"),
    }
    for key, value in changes.items():
        spec[key] = value
    return spec


def slow_spec(tmp_path: Path, name: str) -> dict:
    """SLOW_TRIALS trials of ~2 s (SLOW_EPOCHS epochs of ~0.15 s), two at a time: slow
    enough to kill the driver at a chosen moment, fast enough for CI."""
    spec = tiny_spec(tmp_path, name=name, num_samples=SLOW_TRIALS, max_concurrent_trials=2)
    spec["train"].update(dataset={"name": "synthetic", "n_samples": 20000, "n_features": 20},
                         model={"name": "mlp", "hidden": 64, "depth": 2}, epochs=SLOW_EPOCHS,
                         batch_size=64, early_stopping={"patience": None})
    spec["search_space"] = {"optimizer.lr": {"loguniform": [0.01, 0.3]}}
    return spec


def write_spec(tmp_path: Path, spec: dict, filename: str = "spec.yaml") -> Path:
    path = tmp_path / filename
    path.write_text(yaml.safe_dump(spec))
    return path


def sweep_cli(*args: str, timeout: float = 300,
              env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real console script in a subprocess (tests that do are marked slow)."""
    return subprocess.run([SWEEP, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env=env if env is not None else dict(os.environ))


def invoke(*args: str, env: dict[str, str | None] | None = None):
    """Run `sweep ARGS` in this process with click's CliRunner: its exit code (the
    `sys.exit` of `user_errors` included) and its stdout and stderr apart. `env` sets
    (or, with None, removes) variables for the call; whatever the command sets in
    os.environ (the token mode of `--address`) is undone afterwards."""
    from click.testing import CliRunner

    from orchestrator.cli import main

    with mock.patch.dict(os.environ):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def newcomer_env(home: Path) -> dict[str, str]:
    """The environment of a fresh shell: no Ray settings, an empty HOME."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["HOME"] = str(home)
    env.pop("XDG_CACHE_HOME", None)
    env.pop("XDG_CONFIG_HOME", None)
    # the venv's scripts first, as after `. .venv/bin/activate`
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@contextlib.contextmanager
def heard() -> Iterator[list[str]]:
    """The lines of the SweepWarnings warned within the block (from any thread), every one
    of them, as they come; other warnings go where they went."""
    from orchestrator.errors import SweepWarning

    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("always", SweepWarning)
        shown = warnings.showwarning

        def show(message, category, *rest, **kwargs):
            if issubclass(category, SweepWarning):
                lines.append(str(message))
            else:
                shown(message, category, *rest, **kwargs)

        warnings.showwarning = show
        yield lines


def assert_each_epoch_once(trials, history) -> None:
    """No (trial, epoch) row twice in `history`, and each trial's epochs 1..its
    `epochs` in `trials` (results tables as DataFrames)."""
    from orchestrator.results import schema

    assert not history.duplicated(list(schema.HISTORY_KEY)).any()
    for trial_id, epochs in history.groupby(schema.TRIAL_ID)["epoch"]:
        last = int(trials.loc[trials[schema.TRIAL_ID] == trial_id, "epochs"].iloc[0])
        assert sorted(epochs) == list(range(1, last + 1)), trial_id
