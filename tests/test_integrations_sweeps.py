"""The Lightning and Hugging Face Trainer examples as real sweeps, run from their own
folders as a user runs them (made small with --set): ASHA stops some trials and every
epoch is in the history once; a driver killed with SIGKILL mid-sweep, then `sweep
resume`, continues each running trial from its checkpoint (in the framework's own
format, through SweepCallback's ckpt_path), every epoch once. The Lightning sweep is
tracked in W&B offline: its run files, read with W&B's own reader, hold the history epoch
for epoch after the resume.

The kill needs a checkpoint at every epoch: under ASHA a user's loop checkpoints every
30 s and at its end, and these trials are shorter. It runs under PBT, which checkpoints
every epoch, with no exploit (perturbation_interval past the last epoch), Tune's
experiment snapshot taken every second: a snapshot older than Tune's newest checkpoints
can name one Tune deleted since (it keeps 2, 4 under PBT), which Ray refuses to restore,
for the shared trainable as well."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.results import schema
from tests.faults import kill_run_when
from tests.helpers import REPO, assert_each_epoch_once
from tests.user_project import sweep_in, tables
from tests.wandb_reader import FAKE_KEY, assert_runs_hold_the_tables

NAMES = {"lightning": "lightning-digits", "hf_trainer": "hf-tiny-bert"}
SMALL = {"lightning": [], "hf_trainer": ["--set", "train.rows=512"]}
# the kill test's epochs, long enough (a Lightning one some 0.2 s in batches of 16, an
# HF one seconds) and enough of them for the kill to land between Tune's snapshots
KILL_EPOCHS = {"lightning": 8, "hf_trainer": 6}
KILL_SMALL = {"lightning": ["--set", "train.batch_size=16"], "hf_trainer": SMALL["hf_trainer"]}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Nothing may be fetched from a hub (the examples build their models from configs,
    and the HF one says so itself): the drivers' environment says it too."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def run_example(example: str, tmp_path: Path, *args: str):
    small = SMALL[example] if args[0] == "run" else []
    return sweep_in(REPO / "examples" / example, *args, "--storage", str(tmp_path), *small,
                    timeout=600)


def assert_every_epoch_has_its_curves(history: pd.DataFrame) -> None:
    # the epoch's own training loss is there from epoch 1 (the stale-loss bug: NaN)
    for column in ("train_loss", "val_loss", "val_acc"):
        assert history[column].notna().all(), column


@pytest.mark.slow
@pytest.mark.parametrize("example", ["lightning", "hf_trainer"])
def test_an_example_runs_as_a_sweep_and_asha_stops_some(example, tmp_path, ray_address):
    result = run_example(example, tmp_path, "run", "spec.yaml", "--address", ray_address,
                         "--quiet", "--num-samples", "6", "--max-concurrent", "2",
                         "--set", "train.epochs=3",
                         "--set", "scheduler={name: asha, grace_period: 1, "
                                  "reduction_factor: 2}")
    assert result.returncode == 0, result.stderr[-3000:]
    trials, history = tables(tmp_path / NAMES[example] / schema.RESULTS_DIR)
    assert len(trials) == 6 and trials["error"].isna().all()
    reasons = set(trials[schema.STOP_REASON])
    assert "scheduler" in reasons and "completed" in reasons, reasons  # ASHA stopped some
    assert (trials.loc[trials[schema.STOP_REASON] == "completed", "epochs"] == 3).all()
    assert_each_epoch_once(trials, history)
    assert_every_epoch_has_its_curves(history)
    assert "diverged" not in set(trials["diagnosis"])


def a_trial_midway_in_tunes_snapshot(experiment: Path, epochs: int) -> bool:
    """Does Tune's newest snapshot of the experiment, whole, hold a running trial at an
    epoch from 2 to 2 before its last, whose checkpoints of that epoch and the one
    before are still there (Tune keeps 4 under PBT: at most one newer), and whose result
    file holds every epoch up to it? A resume then continues that trial from one of
    them: its last result (in the snapshot's run metadata) came with a checkpoint under
    PBT, and that report waited for the driver to take the one before (Tune's function
    API; the newest alone may not be known yet: seen with the HF Trainer at epoch 1).
    The epochs Tune recorded after the tables' last write are taken from its result
    files. Tune copies its snapshot, tuner.pkl and the trials' files in place, every
    second here and after a trial's 4th checkpoint since the last (a kill while they are
    written leaves them cut, which no resume survives): none may have been written in
    the last 0.1 s, and the driver is stopped when this holds and killed if it still
    does."""
    states = sorted(experiment.glob("experiment_state-*.json"))
    try:
        trials = [d for d in experiment.iterdir() if (d / "params.json").is_file()]
        copied = [p for d in (experiment, *trials) for p in d.iterdir() if p.is_file()]
        if not states or time.time() - max(p.stat().st_mtime for p in copied) < 0.1:
            return False  # being copied
        pairs = json.loads(states[-1].read_text())["trial_data"]
        known = [(json.loads(trial), json.loads(meta).get("last_result") or {})
                 for trial, meta in pairs]
    except (OSError, ValueError, KeyError, TypeError):
        return False  # being written
    for trial, last in known:
        epoch, folder = last.get("epoch"), experiment / trial["relative_logdir"]
        if trial["status"] != "RUNNING" or not epoch or not 2 <= epoch <= epochs - 2:
            continue
        saved = sorted(folder.glob("checkpoint_*"))
        newest = int(saved[-1].name.removeprefix("checkpoint_")) if saved else -1
        recorded = {r.get("epoch") for r in trial_reports(experiment).get(folder.name, [])}
        if (all((folder / f"checkpoint_{i:06d}").is_dir() for i in (epoch - 2, epoch - 1))
                and newest <= epoch
                and set(range(1, epoch + 1)) <= recorded):
            return True
    return False


def trial_reports(experiment: Path) -> dict[str, list[dict]]:
    """Each trial's reports as Tune's trial folder holds them (every process's; a line
    being written is left out)."""
    out = {}
    for path in experiment.glob("*/result.json"):
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
        out[path.parent.name] = rows
    return out


@pytest.mark.slow
@pytest.mark.parametrize("example", ["lightning", "hf_trainer"])
def test_an_example_killed_mid_sweep_resumes_each_trial_from_its_checkpoint(
        example, tmp_path, ray_address, monkeypatch):
    experiment = tmp_path / NAMES[example]
    results = experiment / schema.RESULTS_DIR
    epochs = KILL_EPOCHS[example]
    args = ["--address", ray_address, "--quiet", "--storage", str(tmp_path),
            "--num-samples", "3", "--max-concurrent", "1", "--set", f"train.epochs={epochs}",
            "--set", "scheduler={name: pbt, perturbation_interval: 1000}", *KILL_SMALL[example]]
    tracked = example == "lightning"  # a Lightning user's sweep, in W&B offline
    if tracked:
        args += ["--set", "tracking={wandb: {project: digits, mode: offline}}"]
        monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)  # must land in no file
    # Tune snapshots the experiment every 10 s or more, longer than these trials: every
    # second here, so that the kill can land where the snapshot knows a checkpoint (and
    # names none Tune deleted since: it keeps 4 under PBT, one an epoch)
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "1")
    kill_run_when(lambda: experiment.is_dir() and
                  a_trial_midway_in_tunes_snapshot(experiment, epochs),
                  "a trial two epochs in, in Tune's snapshot", "run", "spec.yaml", *args,
                  cwd=REPO / "examples" / example, frozen=True)
    monkeypatch.delenv("TUNE_GLOBAL_CHECKPOINT_S")
    before = trial_reports(experiment)
    killed_pids = {r["pid"] for rows in before.values() for r in rows}
    resumed = run_example(example, tmp_path, "resume", NAMES[example], "--address",
                          ray_address, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    trials, history = tables(results)
    assert len(trials) == 3 and trials["error"].isna().all()
    assert set(trials[schema.STOP_REASON]) <= {"completed", "scheduler"}
    assert_each_epoch_once(trials, history)
    assert_every_epoch_has_its_curves(history)
    continued = 0
    for trial_id, rows in trial_reports(experiment).items():
        after = [r for r in rows if r["pid"] not in killed_pids]
        if not before.get(trial_id) or not after:
            continue  # started after the kill, or ended before it
        # the resumed process started right after the checkpoint it was given (the
        # framework resumed from it): without ckpt_path it would report epoch 1 again
        first = min(after, key=lambda r: r["epoch"])
        assert first["epoch"] == first["restored_from_epoch"] + 1, (trial_id, first)
        continued += first["restored_from_epoch"] >= 1
    assert continued >= 1, "no trial continued from a checkpoint after the kill"
    segments = json.loads((results / schema.SWEEP_FILE).read_text())["segments"]
    assert [s["status"] for s in segments] == ["killed", "finished"]
    if tracked:  # W&B's files, read by W&B's reader, hold the history epoch for epoch
        # (the values of the trials one process ran: one that ran again from an older
        # checkpoint keeps its first points in W&B)
        once = {t for t, rows in trial_reports(experiment).items()
                if len({r["pid"] for r in rows}) == 1}
        assert once, "every trial ran in two processes"
        assert_runs_hold_the_tables(experiment, ("train_loss", "val_loss", "val_acc"), "lr",
                                    compare_values=once)
        again = sweep_in(experiment, "track", str(experiment))
        assert again.returncode == 0 and "sent 0 new epoch points" in again.stderr, \
            again.stderr
