"""Out of memory in the shared trainable: a step that runs out halves the batch, scales the
rate and redoes the epoch from the state it started from, exactly as a restore would; the
schedule keeps its shape over the epochs; a checkpoint keeps the halved batch; under the
floor, one line; the advice names the trials memory halved; a user's loop that runs out
gets one line. Without Ray (fast), then in sweeps with real Ray (slow): a search of
batch_size whose 256 does not fit, and a driver killed after a halving, then resumed. The
model is a stand-in on the CPU that raises CUDA's own out-of-memory error at large
batches (tests/oom_project.py)."""

from __future__ import annotations

import json
import math
import os
import signal

import pandas as pd
import pytest
import torch

from orchestrator.analysis.advice import advise
from orchestrator.engine.run import run_sweep
from orchestrator.results import schema
from orchestrator.results.folder import read_history, read_trials
from orchestrator.spec import load_spec
from orchestrator.spec.settings import BatchScalingConfig, TrialConfig
from orchestrator.trainable.oom import TrialOutOfMemory, halved, in_loop, out_of_memory
from orchestrator.trainable.scaling import effective_lr
from orchestrator.trainable.trainer import Trainer
from tests.faults import (
    ended_at_exit,
    ended_trials,
    reported_epochs,
    snapshotted_since,
    start_sweep,
    wait_for,
)
from tests.helpers import sweep_cli
from tests.oom_project import hungry_train, write_hungry_loop, write_hungry_project

TIMINGS = ("epoch_s", "trial_time_s")


def trainer(tmp_path, trial_index: int = 1, **changes) -> Trainer:
    config = TrialConfig.model_validate({"train": hungry_train(tmp_path, **changes),
                                         "seed": 5, "code": {"folders": [str(tmp_path)]}})
    return Trainer(config, trial_index)


def run(t: Trainer) -> list[dict]:
    rows = []
    while not t.finished:
        rows.append({k: v for k, v in t.train_epoch().items() if k not in TIMINGS})
    return rows


def test_out_of_memory_is_told_apart_from_other_errors():
    assert out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to ..."))
    assert out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not out_of_memory(ValueError("out of memory"))
    assert [halved(256, 8), halved(9, 8), halved(15, 8)] == [128, None, None]


@pytest.mark.parametrize("error", ["cuda", "runtime"])
def test_a_batch_that_does_not_fit_is_halved_until_it_does_with_the_rate_scaled(tmp_path,
                                                                              error):
    t = trainer(tmp_path, model={"error": error})
    rows = run(t)
    assert [r["epoch"] for r in rows] == [1, 2, 3]  # each epoch once: the redone one
    assert t.batch_sizes == [256, 128, 64]
    assert [(r["batch_size"], r["oom_halvings"]) for r in rows] == [(64, 2)] * 3
    at_256 = 0.1 * math.sqrt(256 / 32)  # sqrt rule, reference 32
    assert rows[-1]["effective_lr"] == pytest.approx(at_256 * math.sqrt(64 / 256))
    assert rows[-1]["effective_lr"] == pytest.approx(at_256 / 2)
    assert rows[-1]["stop_reason"] == "completed"


def test_the_redone_epoch_starts_from_the_epochs_state_as_a_restore_would(tmp_path):
    """Out of memory at the second step of epoch 2 (after one step of it updated the
    weights, drew dropout and moved every RNG): the trial goes on exactly as one that
    finished epoch 1 at 256 and was told to use 64 from there, with no error at all."""
    # 576 examples to train on: batches of 256, 256, 64 at 256; 4 steps run at any batch
    data = {"n_samples": 640, "val_fraction": 0.1}
    hit = trainer(tmp_path, epochs=4, dataset=data, model={"after": 4})
    rows = run(hit)
    assert hit.batch_sizes == [256, 128, 64]
    assert [r["batch_size"] for r in rows] == [256, 64, 64, 64]

    clean = trainer(tmp_path, epochs=4, dataset=data, model={"limit": 10**9})
    reference = [{k: v for k, v in clean.train_epoch().items() if k not in TIMINGS}]
    clean.use_batch(128)
    clean.use_batch(64)
    reference += run(clean)
    assert rows == reference  # exact equality, not approx


@pytest.mark.parametrize("schedule, shape", [
    # the rate at each epoch's first step, as a share of the batch's effective rate
    ({"name": "cosine"}, lambda e, n: (1 + math.cos(math.pi * (e - 1) / n)) / 2),
    ({"name": "step", "step_size": 2, "gamma": 0.1}, lambda e, n: 0.1 ** ((e - 1) // 2)),
    ({"name": "constant", "warmup_epochs": 2}, None),
])
def test_the_schedule_keeps_its_shape_over_the_epochs_after_a_halving(tmp_path, schedule,
                                                                      shape):
    t = trainer(tmp_path, epochs=4, schedule=schedule, model={"after": 2})
    rows = run(t)
    assert [r["batch_size"] for r in rows] == [256, 64, 64, 64]
    rate = {256: 0.1 * math.sqrt(256 / 32), 64: 0.1 * math.sqrt(64 / 32)}
    if schedule.get("warmup_epochs"):
        # warmup ramps per step: epoch 1 starts at 1/W of the rate, W = 2 epochs' steps
        # at 256 (2 steps each), epoch 2 half-way through it at 64
        assert rows[0]["lr"] == pytest.approx(rate[256] / 4)
        # (the ramp is (step + 1) / W: step 5 of W = 10 at 64)
        assert [r["lr"] for r in rows[1:]] == pytest.approx(
            [rate[64] * (6 / 10), rate[64], rate[64]])
        return
    assert [r["lr"] for r in rows] == pytest.approx(
        [rate[r["batch_size"]] * shape(r["epoch"], 4) for r in rows])


def test_a_checkpoint_keeps_the_halved_batch_and_a_restored_trial_continues_exactly(
        tmp_path):
    straight = run(trainer(tmp_path, epochs=4, model={"after": 2}))  # halved in epoch 2
    first = trainer(tmp_path, epochs=4, model={"after": 2})
    head = [{k: v for k, v in first.train_epoch().items() if k not in TIMINGS}
            for _ in range(2)]
    first.save(tmp_path)
    log = tmp_path / "errors.log"  # the restored model writes a line per error it raises
    resumed = trainer(tmp_path, epochs=4, model={"after": 0, "log": str(log)})
    resumed.load(tmp_path)
    assert resumed.batch_sizes == [256, 128, 64] and resumed.batch_size == 64
    assert resumed.effective_lr == pytest.approx(0.1 * math.sqrt(64 / 32))
    tail = run(resumed)
    assert not log.exists()  # it never tried the batches that did not fit again
    for row in head + tail + straight:
        row.pop("restored_from_epoch")
    assert head + tail == straight


def test_evaluation_out_of_memory_halves_the_evaluation_batch(tmp_path):
    # 1000 validation examples: at 4096 (all of them) .. 128 a batch reaches the limit
    big = {"dataset": {"n_samples": 1320, "val_fraction": 1000 / 1320}, "epochs": 2,
           "batch_size": 64}
    rows = run(trainer(tmp_path, **big))
    assert [r["batch_size"] for r in rows] == [64, 64]
    fitting = trainer(tmp_path, **big, eval_batch_size=64)
    assert rows == run(fitting)


def test_under_the_floor_the_trial_ends_with_one_line_naming_the_sizes_tried(tmp_path):
    t = trainer(tmp_path, oom={"min_batch_size": 128})
    with pytest.raises(TrialOutOfMemory) as caught:
        t.train_epoch()
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith("out of memory training at every batch size tried (256, 128); "
                           "half of 128 is under train.oom.min_batch_size (128)")
    assert "[OutOfMemoryError: CUDA out of memory." in line


def test_halve_false_lets_the_error_through(tmp_path):
    t = trainer(tmp_path, oom={"halve": False})
    with pytest.raises(torch.cuda.OutOfMemoryError):
        t.train_epoch()


def test_other_errors_are_not_taken_for_memory(tmp_path):
    t = trainer(tmp_path)
    t.model.forward = lambda x: (_ for _ in ()).throw(RuntimeError("shapes do not match"))
    with pytest.raises(RuntimeError, match="shapes do not match"):
        t.train_epoch()
    assert t.batch_sizes == [256]


@pytest.mark.parametrize("rule, reference, expected", [
    ("sqrt", 32, 0.1 * math.sqrt(64 / 32)),
    ("linear", 32, 0.1 * 64 / 32),
    # rule none: the spec's rate is the rate at the batch asked for; memory's smaller
    # batch takes it by the square-root rule
    ("none", 32, 0.1 * math.sqrt(64 / 256)),
])
def test_the_halved_batchs_rate_follows_the_spec_rule(rule, reference, expected):
    scaling = BatchScalingConfig(rule=rule, reference_batch_size=reference)
    assert effective_lr(0.1, 64, scaling, asked=256) == pytest.approx(expected)
    assert effective_lr(0.1, 256, scaling, asked=256) == effective_lr(0.1, 256, scaling)


def test_the_advice_names_the_trials_memory_halved():
    frame = pd.DataFrame({
        "trial_id": ["a", "b", "c", "d"], "stop_reason": "completed",
        "config.batch_size": [256, 256, 256, 64], "batch_size_used": [128, 128, 128, 64],
        "oom_halvings": [1, 1, 1, 0], "best_val_acc": 0.9,
    })
    assert advise(frame, {"metric": "val_acc", "mode": "max", "search_space": {}}) == [
        "3 trials ran out of memory at batch 256 and ran at 128 with the rate scaled: "
        "their results are batch 128's (batch_size_used, effective_lr)"]


def test_a_loops_out_of_memory_line_names_it_its_settings_and_the_hint():
    error = in_loop("my_loop:train", {"batch_size": 256, "lr": 0.05},
                    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    line = str(error)
    assert "\n" not in line
    assert line.startswith("out of memory in your loop my_loop:train with batch_size=256, "
                           "lr=0.05: the loop owns its batch, so the sweep cannot halve it")
    assert line.endswith("[OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB]")


# -- in sweeps, with real Ray (slow) ----------------------------------------------------

def assert_each_epoch_once(trials: pd.DataFrame, history: pd.DataFrame) -> None:
    assert not history.duplicated(list(schema.HISTORY_KEY)).any()
    for _, row in trials.iterrows():
        epochs = history[history[schema.TRIAL_ID] == row[schema.TRIAL_ID]]["epoch"]
        assert sorted(epochs) == list(range(1, int(row["epochs"]) + 1))


@pytest.mark.slow
def test_a_sweep_whose_large_batches_do_not_fit_finishes_every_trial(tmp_path, ray_address):
    spec = load_spec(write_hungry_project(tmp_path, num_samples=4))
    outcome = run_sweep(spec)
    trials, history = outcome.trials, outcome.history
    assert set(trials["config.batch_size"]) == {64, 256}
    assert (trials[schema.STATUS] == "terminated").all()
    assert (trials[schema.STOP_REASON] == "completed").all()
    rate = {b: 0.1 * math.sqrt(b / 32) for b in (64, 256)}  # sqrt rule, reference 32
    for _, trial in trials.iterrows():
        asked = trial["config.batch_size"]
        assert trial["batch_size_used"] == 64
        assert trial["oom_halvings"] == (2 if asked == 256 else 0)  # 256 -> 128 -> 64
        assert trial["effective_lr"] == pytest.approx(rate[asked] / (2 if asked == 256 else 1))
    assert_each_epoch_once(trials, history)
    assert (history["batch_size"] == 64).all()
    halved = int((trials["config.batch_size"] == 256).sum())
    assert f"{halved} trial{'s' if halved > 1 else ''} ran out of memory at batch 256 and " \
        "ran at 64 with the rate scaled" in advise(trials, spec.resolved())[0]


@pytest.mark.slow
def test_a_trial_that_fits_no_batch_ends_with_one_line(tmp_path, ray_address):
    path = write_hungry_project(tmp_path, name="floor", num_samples=1,
                                search_space={})
    spec = load_spec(path, ["train.oom.min_batch_size=128"])
    outcome = run_sweep(spec)
    trial = outcome.trials.iloc[0]
    assert trial[schema.STATUS] == "error" and pd.isna(trial["epochs"])
    lines = [x for x in trial["error"].splitlines() if "out of memory training" in x]
    assert len(lines) == 1 and lines[0].endswith(
        "out of memory training at every batch size tried (256, 128); half of 128 is under "
        "train.oom.min_batch_size (128): give the trial more GPU memory (fewer trials per "
        "GPU: resources.gpu) or a smaller model [OutOfMemoryError: CUDA out of memory. "
        "Tried to allocate 128 examples' activations]")


@pytest.mark.slow
def test_killed_after_a_halving_a_resumed_trial_keeps_the_batch_that_fits(tmp_path,
                                                                          ray_address):
    """The driver is killed after both trials halved their batch (and Tune's state knows
    their checkpoints); the resumed trials continue at 64: the model raises no error
    again, as its log of errors shows."""
    log = tmp_path / "errors.log"
    train = hungry_train(tmp_path, epochs=12, model={"log": str(log), "delay": 0.1})
    path = write_hungry_project(tmp_path, name="killed", num_samples=2, train=train,
                                max_concurrent_trials=2,
                                search_space={"batch_size": {"grid": [256]}})
    sweep = tmp_path / "sweeps" / "killed"
    results = sweep / schema.RESULTS_DIR

    def checkpointed_and_snapshotted(seen: list[float]) -> bool:
        return snapshotted_since(sweep, not ended_trials(results) and reported_epochs(
            results) >= 2 and len(list(sweep.glob("*/checkpoint_*/meta.json"))) >= 2, seen)

    seen: list[float] = []
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "0.5"}  # Tune snapshots its state often
    with ended_at_exit(start_sweep("run", str(path), "--address", ray_address, "--quiet",
                                   env=env)) as proc:
        wait_for(lambda: checkpointed_and_snapshotted(seen) or proc.poll() is not None, 180,
                 "both trials to checkpoint their halved epoch")
        assert proc.poll() is None, "the sweep ended before the kill"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    errors_before = log.read_text().split()
    assert sorted(errors_before) == ["128", "128", "256", "256"]

    resumed = sweep_cli("resume", str(sweep), "--address", ray_address, "--quiet", env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert log.read_text().split() == errors_before  # no batch that does not fit, again
    trials, history = read_trials(results), read_history(results)
    assert (trials[schema.STOP_REASON] == "completed").all() and (trials["epochs"] == 12).all()
    assert (trials["batch_size_used"] == 64).all() and (trials["oom_halvings"] == 2).all()
    assert_each_epoch_once(trials, history)
    assert (history["batch_size"] == 64).all()
    segments = json.loads((results / schema.SWEEP_FILE).read_text())["segments"]
    assert [s["status"] for s in segments] == ["killed", "finished"]


@pytest.mark.slow
def test_a_loop_that_runs_out_of_memory_errors_with_one_line(tmp_path, ray_address):
    outcome = run_sweep(load_spec(write_hungry_loop(tmp_path)))
    trials = outcome.trials.set_index("config.batch_size")
    fits, hungry = trials.loc[64], trials.loc[256]
    assert fits[schema.STOP_REASON] == "completed" and fits["batch_size_used"] == 64
    assert (outcome.history["batch_size"] == 64).all()  # the batch the loop reported
    assert "batch_size" not in str(fits.get("loop_metrics", ""))
    assert hungry[schema.STATUS] == "error"
    line = next(x for x in hungry["error"].splitlines() if "out of memory in your" in x)
    assert ("out of memory in your loop hungry_loop:train with batch_size=256, epochs=2, "
            "limit=128: the loop owns its batch") in line
