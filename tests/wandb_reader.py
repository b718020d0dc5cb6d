"""W&B's own reader over a sweep's offline run files (`wandb leet inspect --json`), for
the tests of W&B tracking: a run's fragments (a resumed offline run is a new run folder
of the same id, which `wandb sync` uploads in order) read as W&B holds them once synced."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.results import schema

WANDB = str(Path(sys.executable).with_name("wandb"))
FAKE_KEY = "0123456789abcdef" * 2 + "fedcba98"  # 40 characters, as W&B's keys


def fragments(wandb_dir: Path) -> dict[str, list[Path]]:
    """run id -> its run folders (fragments), in the order `wandb sync` uploads them."""
    found: dict[str, list[Path]] = {}
    for log in sorted(wandb_dir.glob("offline-run-*/run-*.wandb"), key=lambda p: p.parent.name):
        found.setdefault(log.stem.removeprefix("run-"), []).append(log.parent)
    return found


def inspect(run_dir: Path) -> list[dict]:
    """The records of one run folder as W&B's own reader prints them."""
    out = subprocess.run([WANDB, "leet", "inspect", "--json", str(run_dir)],
                         capture_output=True, text=True, timeout=120, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def read_run(folders: list[Path]) -> dict:
    """A run as W&B holds it once synced: its fragments' history rows by step (a step
    twice fails), the summary after every update, the run record of each fragment."""
    history: dict[int, dict] = {}
    summary: dict = {}
    runs = []
    for folder in folders:
        for record in inspect(folder):
            if record["type"] == "history":
                step = int(record["history"]["step"]["num"])
                assert step not in history, f"{folder.name}: epoch {step} twice"
                history[step] = record["history"]["item"]
            elif record["type"] == "summary":
                summary.update(record["summary"].get("update", {}))
            elif record["type"] == "run":
                runs.append(record["run"])
    return {"history": history, "summary": summary, "runs": runs}


def assert_runs_hold_the_tables(sweep_folder: Path, curves: tuple[str, ...],
                                setting: str, compare_values: set[str] | None = None) -> None:
    """One W&B run per trial, grouped by the sweep: its history the trial's epochs, each
    once, with the history table's values; its summary the trials table's end; its
    config the trial's settings (`setting`: one to compare); no API key in any file.

    `compare_values`: the trials whose values are compared (all when None). An epoch a
    resumed trial ran again (from a checkpoint older than its last epoch reported) keeps
    its first point in W&B, as in MLflow, while the tables hold the second."""
    results = sweep_folder / schema.RESULTS_DIR
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    history = pd.read_parquet(results / schema.HISTORY_FILE)
    runs = fragments(sweep_folder / "wandb")
    by_trial = {run_id.split("-", 1)[1]: folders for run_id, folders in runs.items()}
    assert set(by_trial) == set(trials[schema.TRIAL_ID])
    for trial in trials.to_dict("records"):
        run = read_run(by_trial[trial[schema.TRIAL_ID]])
        table = history[history[schema.TRIAL_ID] == trial[schema.TRIAL_ID]]
        assert sorted(run["history"]) == sorted(table["epoch"])  # each epoch once
        if compare_values is not None and trial[schema.TRIAL_ID] not in compare_values:
            continue
        for curve in curves:
            expected = [v for v in table.sort_values("epoch")[curve] if not math.isnan(v)]
            got = [run["history"][e][curve] for e in sorted(table["epoch"])
                   if curve in run["history"][e]]
            assert got == pytest.approx(expected, rel=1e-9), (trial[schema.TRIAL_ID], curve)
        for name in (schema.STOP_REASON, "diagnosis", "diagnosis_reason"):
            assert run["summary"][name] == trial[name], name
        assert {r["run_group"] for r in run["runs"]} == {sweep_folder.name}
        assert {r["display_name"] for r in run["runs"]} == {trial[schema.TRIAL_ID]}
        config = run["runs"][0]["config"]["update"]
        assert config[setting] == pytest.approx(trial[f"config.{setting}"])
    for path in sweep_folder.rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), path
