"""Warm start (`warm_start:`, `sweep run --warm-start`): which earlier trials lie inside a
new space (fast, on hand-built sweeps), bad input as one line before Ray starts, and real
tiny sweeps (slow) whose searcher holds the earlier trials and whose first trial is the
earlier best, also across a kill -9 and `sweep resume`."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from orchestrator.engine.warm_start import select
from orchestrator.errors import OrchestratorError
from orchestrator.results import schema
from orchestrator.results.folder import read_history, read_trials
from orchestrator.spec.distributions import Distribution
from orchestrator.spec.model import spec_from_mapping
from tests.built_sweeps import Made, tables, write_sweep
from tests.helpers import (
    SLOW_EPOCHS,
    SLOW_TRIALS,
    invoke,
    slow_spec,
    sweep_cli,
    tiny_spec,
    write_spec,
)

# the earlier sweep: 6 trials over a wide range; the best (lr 0.6) and the worst (lr
# 0.002) lie outside the new range [0.01, 0.3], the best inside is lr 0.2 (batch 16)
OLD_SPACE = {"optimizer.lr": {"loguniform": [0.001, 1.0]}, "batch_size": {"choice": [16, 32]}}
NEW_SPACE = {"optimizer.lr": {"loguniform": [0.01, 0.3]}, "batch_size": {"choice": [16, 32]}}
RATES = [0.002, 0.02, 0.05, 0.1, 0.2, 0.6]


def old_trials() -> list[Made]:
    return [Made({"optimizer.lr": lr, "batch_size": (16, 32)[i % 2]}, score=0.5 + 0.05 * i)
            for i, lr in enumerate(RATES)]


def old_sweep(tmp_path: Path, made: list[Made] | None = None, searched: dict = OLD_SPACE,
              **changes) -> Path:
    spec = tiny_spec(tmp_path, name="old", num_samples=6, search_space=searched, **changes)
    return write_sweep(tmp_path / "sweeps", spec, made or old_trials())


def space(raw: dict) -> dict[str, Distribution]:
    return {k: Distribution.model_validate(v) for k, v in raw.items()}


# -- which values a space holds --------------------------------------------------------

@pytest.mark.parametrize("dist, value, holds, as_held", [
    ({"loguniform": [1e-4, 0.1]}, 0.05, True, 0.05),
    ({"loguniform": [1e-4, 0.1]}, 1e-4, True, 1e-4),  # its ends are inside
    ({"loguniform": [1e-4, 0.1]}, np.float64(0.01), True, 0.01),
    ({"loguniform": [1e-4, 0.1]}, 0.2, False, None),
    ({"loguniform": [1e-4, 0.1]}, 5e-5, False, None),
    ({"loguniform": [1e-4, 0.1]}, math.nan, False, None),
    ({"loguniform": [1e-4, 0.1]}, None, False, None),
    ({"loguniform": [1e-4, 0.1]}, True, False, None),
    ({"uniform": [0.0, 0.5]}, "0.1", False, None),
    ({"randint": [1, 3]}, np.int64(3), True, 3),
    ({"randint": [1, 3]}, 2.0, True, 2),
    ({"randint": [1, 3]}, 2.5, False, None),
    ({"randint": [1, 3]}, 4, False, None),
    ({"lograndint": [8, 64]}, 16, True, 16),
    ({"lograndint": [8, 64]}, 65, False, None),
    ({"quniform": [0.0, 1.0, 0.25]}, 0.5, True, 0.5),
    ({"quniform": [0.0, 1.0, 0.25]}, 0.3, False, None),
    ({"choice": [32, 64]}, np.int64(64), True, 64),
    ({"choice": [32, 64]}, 48, False, None),
    ({"choice": [1, 2]}, True, False, None),  # True == 1 in Python, not in a space
    ({"choice": [True, False]}, np.bool_(False), True, False),
    ({"choice": [True, False]}, 0, False, None),
    ({"choice": ["relu", "tanh"]}, "tanh", True, "tanh"),
    ({"choice": ["relu", "tanh"]}, "gelu", False, None),
    ({"choice": [[64, 64], [128]]}, "[64, 64]", True, [64, 64]),  # lists: JSON text in tables
    ({"choice": [[64, 64], [128]]}, "[64]", False, None),
    ({"grid": [0.1, 0.2]}, 0.2, True, 0.2),
])
def test_a_distribution_holds_what_it_can_draw(dist, value, holds, as_held):
    found, held = Distribution.model_validate(dist).member(value)
    assert found is holds
    assert held == as_held and type(held) is type(as_held)


# -- which trials are given, which is run again ------------------------------------------

def test_only_trials_inside_the_new_space_are_given_and_the_best_inside_is_rerun():
    trials, _ = tables(old_trials())
    known, outside, reruns = select(trials, space(NEW_SPACE), {}, OLD_SPACE, "val_acc", "max", 1)
    assert sorted(k.values["optimizer.lr"] for k in known) == [0.02, 0.05, 0.1, 0.2]
    assert outside == 2
    assert [k.values for k in reruns] == [{"optimizer.lr": 0.2, "batch_size": 16}]
    # what a searcher is told: the metric at the trial's last report, as Tune tells it
    last = dict(zip(trials[schema.TRIAL_ID], trials["val_acc"]))
    assert all(k.value == last[k.trial_id] for k in known)
    # the top 2, best first; none at all
    two = select(trials, space(NEW_SPACE), {}, OLD_SPACE, "val_acc", "max", 2)[2]
    assert [k.values["optimizer.lr"] for k in two] == [0.2, 0.1]
    assert select(trials, space(NEW_SPACE), {}, OLD_SPACE, "val_acc", "max", 0)[2] == []


def test_a_minimised_metric_reruns_the_lowest():
    trials, _ = tables(old_trials())
    trials = trials.assign(best_val_loss=[0.9, 0.8, 0.3, 0.5, 0.6, 0.1], val_loss=0.5)
    reruns = select(trials, space(NEW_SPACE), {}, OLD_SPACE, "val_loss", "min", 1)[2]
    assert [k.values["optimizer.lr"] for k in reruns] == [0.05]  # 0.6's 0.1 lies outside


def test_a_choice_cut_and_a_log_range_narrowed_leave_their_trials_out():
    trials, _ = tables(old_trials())
    narrowed = {"optimizer.lr": {"loguniform": [0.03, 0.15]}, "batch_size": {"choice": [32]}}
    known, outside, reruns = select(trials, space(narrowed), {}, OLD_SPACE, "val_acc", "max", 1)
    assert [(k.values["optimizer.lr"], k.values["batch_size"]) for k in known] == [(0.1, 32)]
    assert outside == 5 and [k.values["optimizer.lr"] for k in reruns] == [0.1]


def test_a_key_searched_before_and_fixed_now_keeps_only_the_trials_at_its_value():
    trials, _ = tables(old_trials())
    only_lr = {"optimizer.lr": NEW_SPACE["optimizer.lr"]}
    known, outside, _ = select(trials, space(only_lr), {"config.batch_size": 32}, OLD_SPACE,
                               "val_acc", "max", 1)
    assert sorted(k.values["optimizer.lr"] for k in known) == [0.02, 0.1]
    assert all(set(k.values) == {"optimizer.lr"} for k in known) and outside == 4


def test_errored_and_unfinished_trials_are_not_given():
    trials, _ = tables(old_trials())
    trials.loc[4, schema.STATUS] = "error"  # the best inside
    trials.loc[3, schema.STOP_REASON] = None  # still running when the sweep stopped
    known, _, reruns = select(trials, space(NEW_SPACE), {}, OLD_SPACE, "val_acc", "max", 1)
    assert sorted(k.values["optimizer.lr"] for k in known) == [0.02, 0.05]
    assert [k.values["optimizer.lr"] for k in reruns] == [0.05]


# -- the plan, and bad input before Ray starts ------------------------------------------------

def new_spec(tmp_path: Path, **changes) -> Path:
    spec = tiny_spec(tmp_path, name="new", search_space=NEW_SPACE, **changes)
    return write_spec(tmp_path, spec, "new.yaml")


def test_the_plan_says_what_the_warm_start_read(tmp_path):
    old_sweep(tmp_path)
    result = invoke("run", str(new_spec(tmp_path, searcher={"name": "optuna"})),
                    "--warm-start", "old", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert (f"warm start  from {tmp_path / 'sweeps' / 'old'}: 4 of its 6 ended trials lie "
            "inside this search space (4 given to the searcher as evaluated; its best 1 run "
            "again first)") in result.stdout
    random = invoke("run", str(new_spec(tmp_path)), "--warm-start", "old", "--dry-run")
    assert "(the searcher does not learn from them; its best 1 run again first)" \
        in random.stdout


@pytest.mark.parametrize("problem, change, message", [
    ("missing", None, "warm_start.from: no sweep 'nowhere' in "),
    ("metric", {"metric": "val_loss", "mode": "min"},
     "warm_start.from: sweep old has metric 'val_loss', this sweep 'val_acc': "),
    ("mode", "mode", "warm_start.from: sweep old has mode 'min', this sweep 'max': "),
    ("no trials", "errored", "warm_start.from: sweep old in "),
    ("no overlap", "outside", "warm_start.from: none of the 2 ended trials of sweep old lies "
     "inside this search space (its search_space: optimizer.lr, batch_size): nothing to "
     "start from"),
])
def test_bad_warm_starts_are_one_line_and_exit_2(tmp_path, problem, change, message):
    if change == "errored":
        old_sweep(tmp_path, [Made({"optimizer.lr": 0.1, "batch_size": 16},
                                  extra={schema.STATUS: "error"})])
    elif change == "outside":  # the two rates outside the new range alone
        old_sweep(tmp_path, [Made({"optimizer.lr": lr, "batch_size": 16}) for lr in (0.002, 0.6)])
    elif change == "mode":
        folder = old_sweep(tmp_path)
        path = folder / schema.RESULTS_DIR / schema.SWEEP_FILE
        data = json.loads(path.read_text())
        data["spec"]["mode"] = "min"  # a user's metric, minimised there
        path.write_text(json.dumps(data))
    elif change:
        old_sweep(tmp_path, **change)
    source = "nowhere" if problem == "missing" else "old"
    result = invoke("run", str(new_spec(tmp_path)), "--warm-start", source, "--dry-run")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {message}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    if problem == "no trials":
        assert "has no trials that ended without error (1 trials)" in result.stderr


def test_a_submitted_warm_start_from_a_folder_of_this_machine_is_refused(tmp_path):
    from orchestrator.jobs.staging import check_warm_start

    def spec(**warm):
        return spec_from_mapping(tiny_spec(tmp_path, name="new", warm_start=warm))

    check_warm_start(spec(**{"from": "old"}), "s3://bucket/sweeps")  # a name: read there
    check_warm_start(spec(**{"from": "s3://bucket/sweeps/old"}), "/mnt/sweeps")
    check_warm_start(spec(**{"from": "old", "storage": "s3://b/x"}), "/mnt/sweeps")
    check_warm_start(spec(**{"from": "old", "storage": "/mnt/sweeps/"}), "/mnt/sweeps")
    check_warm_start(spec(**{"from": "/mnt/sweeps/old"}), "/mnt/sweeps")
    with pytest.raises(OrchestratorError, match=r"^warm_start.from: is '\./sweeps/old', a "
                       r"path on this machine; a submitted sweep reads its warm start on "
                       r"the cluster: give the sweep's name"):
        check_warm_start(spec(**{"from": "./sweeps/old"}), "s3://bucket/sweeps")
    with pytest.raises(OrchestratorError, match=r"^warm_start.storage: is '/home/me/sweeps'"):
        check_warm_start(spec(**{"from": "old", "storage": "/home/me/sweeps"}), "/mnt/sweeps")
    result = invoke("submit", str(new_spec(tmp_path)), "--address", "http://127.0.0.1:9",
                    "--storage", "/mnt/sweeps", "--set", f"warm_start.from={tmp_path}/old")
    assert result.exit_code == 2 and result.stderr.startswith("error: warm_start.from: is ")


def test_the_warm_searcher_suggests_the_rerun_then_learns_from_the_history():
    """In-process, no trials run: the searcher's first suggestion is the earlier best, and
    what it suggests next differs from a cold searcher of the same seed, as TPE, given
    the earlier trials as evaluated, models them instead of sampling at random."""
    from optuna.samplers import TPESampler
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from orchestrator.engine.warm_searcher import WarmOptunaSearch

    trials, _ = tables(old_trials())
    known, _, reruns = select(trials, space(NEW_SPACE), {}, OLD_SPACE, "val_acc", "max", 1)
    config = {"train": {"optimizer": {"lr": tune.loguniform(0.01, 0.3)},
                        "batch_size": tune.choice([16, 32])}}
    history = [({"train": {"optimizer": {"lr": k.values["optimizer.lr"]},
                           "batch_size": k.values["batch_size"]}}, k.value) for k in known]
    rerun = {**history[-1][0], "warm_start_rerun": True}

    def draws(searcher, n: int) -> list[dict]:
        assert searcher.set_search_properties("val_acc", "max", config)
        return [searcher.suggest(f"t{i}") for i in range(n)]

    def sampler():
        return TPESampler(seed=3, n_startup_trials=2)

    warm = WarmOptunaSearch(sampler=sampler(), history=history, reruns=[rerun])
    cold = OptunaSearch(sampler=sampler())
    warm_draws, cold_draws = draws(warm, 4), draws(cold, 3)
    assert reruns[0].values == known[-1].values == {"optimizer.lr": 0.2, "batch_size": 16}
    assert warm_draws[0] == rerun
    assert len(warm._ot_study.get_trials()) == 4 + 3  # the history, then its own asks
    assert warm_draws[1:] != cold_draws
    # the same seed and no history: the warm searcher draws what the cold one does
    plain = WarmOptunaSearch(sampler=sampler(), history=[], reruns=[])
    assert draws(plain, 3) == cold_draws


# -- real tiny sweeps ---------------------------------------------------------------------

def study_of(experiment: Path):
    """The searcher as the sweep's driver left it (Tune's saved state of it), restored."""
    from orchestrator.engine.warm_searcher import WarmOptunaSearch

    searcher = WarmOptunaSearch(history=[], reruns=[])
    searcher.restore_from_dir(str(experiment))
    return searcher


@pytest.mark.slow
def test_a_warm_started_optuna_sweep_holds_the_earlier_trials_and_runs_the_best_first(
        tmp_path, ray_address):
    from optuna.trial import TrialState

    from orchestrator.engine.run import run_sweep

    source = old_sweep(tmp_path)
    old, _ = tables(old_trials())
    spec = tiny_spec(tmp_path, name="new", num_samples=3, max_concurrent_trials=1,
                     search_space=NEW_SPACE, searcher={"name": "optuna", "n_startup_trials": 2},
                     warm_start={"from": "old"})
    spec["train"]["epochs"] = 2
    outcome = run_sweep(spec_from_mapping(spec))
    trials = outcome.trials.sort_values("started_at").reset_index(drop=True)
    assert len(trials) == 3 and outcome.errored == 0
    # the first trial ran the earlier best inside the new space (lr 0.6 lies outside)
    assert trials["warm_start_rerun"].tolist() == [True, False, False]
    assert trials.loc[0, "config.optimizer.lr"] == 0.2 and trials.loc[0, "config.batch_size"] == 16

    # the searcher the driver used: its study holds the four earlier trials inside the
    # space as evaluated, then the re-run's own result, then the two trials it asked for
    searcher = study_of(Path(outcome.experiment_dir))
    study = searcher._ot_study.get_trials()
    assert searcher.given == 4 and len(study) == 2 + 4 + 1
    earlier = study[:4]
    assert [t.params["train/optimizer/lr"] for t in earlier] == [0.02, 0.05, 0.1, 0.2]
    assert all(t.state == TrialState.COMPLETE for t in study)
    last = dict(zip(old["config.optimizer.lr"], old["val_acc"]))
    assert [t.value for t in earlier] == [last[lr] for lr in (0.02, 0.05, 0.1, 0.2)]
    assert not {0.002, 0.6} & {t.params["train/optimizer/lr"] for t in study}
    rerun = study[4]
    assert rerun.params == {"train/optimizer/lr": 0.2, "train/batch_size": 16}
    assert rerun.value == trials.loc[0, "val_acc"]

    record = json.loads((outcome.results_dir / schema.SWEEP_FILE).read_text())["warm_start"]
    sha = hashlib.sha256((source / schema.RESULTS_DIR / schema.TRIALS_FILE).read_bytes())
    assert record["trials_sha256"] == sha.hexdigest() and record["folder"] == str(source)
    assert (record["inside"], record["outside"], record["given_to_searcher"]) == (4, 2, 4)
    assert [r["trial_id"] for r in record["rerun"]] == ["made_00004"]


@pytest.mark.slow
def test_a_random_sweep_runs_the_earlier_best_first_and_is_given_nothing_else(
        tmp_path, ray_address):
    from orchestrator.engine.run import run_sweep

    old_sweep(tmp_path)
    spec = tiny_spec(tmp_path, name="new", num_samples=2, search_space=NEW_SPACE,
                     warm_start={"from": str(tmp_path / "sweeps" / "old")})
    spec["train"]["epochs"] = 1
    outcome = run_sweep(spec_from_mapping(spec))
    trials = outcome.trials.sort_values(schema.TRIAL_ID).reset_index(drop=True)
    assert trials["warm_start_rerun"].tolist() == [True, False]  # the first trial Tune made
    assert (trials.loc[0, "config.optimizer.lr"], trials.loc[0, "config.batch_size"]) == (0.2, 16)
    record = json.loads((outcome.results_dir / schema.SWEEP_FILE).read_text())["warm_start"]
    assert record["given_to_searcher"] == 0 and record["inside"] == 4


@pytest.mark.slow
def test_a_warm_started_sweep_killed_then_resumed_reruns_nothing_again(tmp_path, ray_address):
    """kill -9 once the re-run has ended; the source is then deleted: `resume` reads
    nothing of it, runs every trial once (one re-run among them) and every epoch once."""
    import shutil

    from tests.faults import ended_trials, kill_run_when

    # the slow sweep searches the rate alone, at batch 64
    lr = {"optimizer.lr": OLD_SPACE["optimizer.lr"]}
    source = old_sweep(tmp_path, [Made({"optimizer.lr": r}, score=0.5 + 0.05 * i)
                                  for i, r in enumerate(RATES)], lr)
    spec = slow_spec(tmp_path, "warm")
    spec.update(searcher={"name": "optuna", "n_startup_trials": 2}, warm_start={"from": "old"})
    path = write_spec(tmp_path, spec)
    results = tmp_path / "sweeps" / "warm" / schema.RESULTS_DIR
    kill_run_when(lambda: ended_trials(results) >= 2, "two trials to end",
                  "run", str(path), "--address", ray_address, "--quiet")
    recorded = json.loads((results / schema.SWEEP_FILE).read_text())["warm_start"]
    shutil.rmtree(source)

    resumed = sweep_cli("resume", str(results.parent), "--address", ray_address, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials, history = read_trials(results), read_history(results)
    assert len(trials) == SLOW_TRIALS and trials[schema.TRIAL_ID].is_unique
    assert (trials[schema.STOP_REASON] == "completed").all()
    assert int(trials["warm_start_rerun"].sum()) == 1
    assert trials[trials["warm_start_rerun"]]["config.optimizer.lr"].tolist() == [0.2]
    assert not history.duplicated(list(schema.HISTORY_KEY)).any()
    for _, epochs in history.groupby(schema.TRIAL_ID)["epoch"]:
        assert sorted(epochs) == list(range(1, SLOW_EPOCHS + 1))
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["warm_start"] == recorded  # kept as read at the start
    assert [s["command"] for s in sweep["segments"]] == ["run", "resume"]
