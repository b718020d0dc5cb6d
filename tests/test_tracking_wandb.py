"""Weights & Biases tracking, offline (no W&B server is reachable here): the run files
W&B's client writes are read back with W&B's own reader (`wandb leet inspect --json`),
and must hold each trial's history epoch for epoch, its settings as config, its end in
the summary, with no epoch twice after a driver resumes (a resumed offline run is a new
fragment of the same run id, which `wandb sync` uploads in order). The spec's checks and
an online mode without an API key are one line, before Ray.

Here through the mirror in-process; a real sweep tracked in W&B offline, killed with
SIGKILL and resumed, is the Lightning example's kill test (test_integrations_sweeps.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.results import schema
from tests.helpers import invoke, tiny_spec, write_spec
from tests.wandb_reader import FAKE_KEY, fragments, read_run

# -- the tracker through the mirror, in-process ------------------------------------------

def _rows(trial_ids, epochs: int, ended: bool):
    trials = {t: {schema.TRIAL_ID: t, schema.STATUS: "terminated" if ended else "running",
                  schema.STOP_REASON: "completed" if ended else None,
                  "diagnosis": "healthy" if ended else None, "diagnosis_reason": None,
                  "best_val_loss": 1.0 / epochs, "best_epoch": epochs,
                  "config.optimizer.lr": 0.1}
              for t in trial_ids}
    history = {t: {e: {schema.TRIAL_ID: t, "epoch": e, "val_loss": 1.0 / e, "lr": 0.1,
                       "val_acc": float("nan")} for e in range(1, epochs + 1)}
               for t in trial_ids}
    return trials, history


def _send(folder: Path, trials, history, interrupted: bool) -> tuple[int, list[str]]:
    """What a driver (or `sweep track`) does: open the trackers, send, finish."""
    from orchestrator.results.storage import as_location
    from orchestrator.spec.tracking import Tracking, WandbTracking
    from orchestrator.tracking.mirror import Mirror, SweepIdentity
    from orchestrator.tracking.setup import client_environment, trackers_for

    tracking = Tracking(wandb=WandbTracking(project="proj", mode="offline"))
    location = as_location(folder)
    warnings: list[str] = []
    with client_environment(tracking, location):
        mirror = Mirror(trackers_for(tracking, location), warnings.append, "sweep track x")
        mirror.open(SweepIdentity("s", "2026-01-01T00:00:00", str(folder), "val_loss", "min",
                                  {"search_space": {"optimizer.lr": {}}}))
        sent = mirror.sync(trials, history)
        mirror.finish(list(trials.values()), [], interrupted=interrupted)
    return sent, warnings


def test_offline_runs_hold_each_epoch_once_across_a_resume(tmp_path, monkeypatch):
    from orchestrator.tracking.wandb_files import held_runs

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WANDB_CACHE_DIR", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    folder = tmp_path / "sweep"
    sent, warnings = _send(folder, *_rows(["t1", "t2"], 2, ended=False), interrupted=True)
    assert (sent, warnings) == (4, [])
    # the next driver: only epochs 3..4 go out, in a new fragment of each run
    sent, warnings = _send(folder, *_rows(["t1", "t2"], 4, ended=True), interrupted=False)
    assert (sent, warnings) == (4, [])
    # and `sweep track` afterwards: nothing
    assert _send(folder, *_rows(["t1", "t2"], 4, ended=True), interrupted=False)[0] == 0

    runs = fragments(folder / "wandb")
    assert len(runs) == 2 and all(len(f) == 2 for f in runs.values())
    prefix = next(iter(runs)).rsplit("-", 1)[0]
    held = held_runs(folder / "wandb", f"{prefix}-", "proj")
    for run_id, folders in runs.items():
        run = read_run(folders)
        assert sorted(run["history"]) == [1, 2, 3, 4]
        assert [run["history"][e]["val_loss"] for e in (1, 2, 3, 4)] == \
            pytest.approx([1, 1 / 2, 1 / 3, 1 / 4])
        assert "val_acc" not in run["history"][1]  # NaN is no point
        trial_id = run_id.removeprefix(f"{prefix}-")
        assert {r["run_id"] for r in run["runs"]} == {run_id}
        assert {r["display_name"] for r in run["runs"]} == {trial_id}
        assert {r["run_group"] for r in run["runs"]} == {"s"}
        assert run["runs"][0]["config"]["update"]["optimizer.lr"] == 0.1
        assert run["summary"]["stop_reason"] == "completed"
        assert run["summary"]["diagnosis"] == "healthy"
        assert run["summary"]["best_val_loss"] == 0.25
        # our reader of the files agrees with W&B's
        assert held[run_id].last_step == 4 and held[run_id].summary["diagnosis"] == "healthy"
    # W&B's service log is in the sweep's W&B folder; nothing of W&B in the home folder,
    # and the API key in no file
    assert list((folder / "wandb" / ".cache").rglob("core-debug-*.log"))
    assert not (tmp_path / "home").exists() or not list((tmp_path / "home").rglob("*"))
    for path in folder.rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), path


def test_a_fragment_a_killed_driver_left_cut_is_completed_not_repeated(tmp_path):
    folder = tmp_path / "sweep"
    _send(folder, *_rows(["t1"], 3, ended=False), interrupted=True)
    [(run_id, [first])] = fragments(folder / "wandb").items()
    log = first / f"run-{run_id}.wandb"
    # cut it inside its last history record, as a writer killed mid-write leaves it
    data = log.read_bytes()
    log.write_bytes(data[: data.rindex(b"val_loss") + 4])
    before = read_run([first])["history"]
    assert sorted(before) and max(before) < 3
    sent, _ = _send(folder, *_rows(["t1"], 3, ended=True), interrupted=False)
    assert sent == 3 - max(before)
    assert sorted(read_run(fragments(folder / "wandb")[run_id])["history"]) == [1, 2, 3]


def test_another_project_gets_runs_of_its_own(tmp_path):
    from orchestrator.tracking.wandb_files import held_runs

    folder = tmp_path / "sweep"
    _send(folder, *_rows(["t1"], 2, ended=True), interrupted=False)
    [run_id] = fragments(folder / "wandb")
    prefix = run_id.rsplit("-", 1)[0]
    assert held_runs(folder / "wandb", f"{prefix}-", "other") == {}
    assert held_runs(folder / "wandb", f"{prefix}-", "proj")[run_id].last_step == 2


# -- the spec and the command line: one line, exit 2 -----------------------------------

@pytest.mark.parametrize("wandb, message", [
    ({"project": "team/proj"}, "tracking.wandb.project: is 'team/proj', but W&B names hold "
                               "none of"),
    ({"project": "p", "mode": "cloud"}, "tracking.wandb.mode:"),
    ({"project": "p", "key": "x"}, "tracking.wandb.key:"),
    ({"mode": "offline"}, "tracking.wandb.project:"),
])
def test_a_bad_wandb_section_is_one_line(tmp_path, wandb, message):
    spec = write_spec(tmp_path, tiny_spec(tmp_path, tracking={"wandb": wandb}))
    result = invoke("validate", str(spec))
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "\n" not in result.stderr.strip(), result.stderr


def test_wandb_on_an_object_store_needs_a_dir(tmp_path):
    spec = tiny_spec(tmp_path, tracking={"wandb": {"project": "p", "mode": "offline"}},
                     storage="s3://bucket/sweeps")
    result = invoke("validate", str(write_spec(tmp_path, spec)))
    assert result.exit_code == 2 and "tracking.wandb: writes W&B's run files into the " \
        "sweep's folder" in result.stderr and "set tracking.wandb.dir" in result.stderr
    spec["tracking"]["wandb"]["dir"] = str(tmp_path / "wandb-files")
    assert invoke("validate", str(write_spec(tmp_path, spec))).exit_code == 0


def test_online_without_an_api_key_stops_the_run_before_ray(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc, no W&B settings
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    spec = write_spec(tmp_path, tiny_spec(tmp_path, tracking={"wandb": {"project": "p"}}))
    result = invoke("run", str(spec), "--quiet")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: tracking.wandb: mode online has no API key here (run `wandb login` or set "
        "WANDB_API_KEY); or use `mode: offline`"), lines
    assert lines[0].endswith(f"`sweep track {tmp_path / 'sweeps' / 'tiny'}` sends them later)")
    assert not (tmp_path / "sweeps").exists()  # nothing written
    assert not list((tmp_path / "home").rglob("*wandb*"))


def test_track_takes_wandb_from_its_options(tmp_path):
    from orchestrator.tracking.replay import tracking_of

    recorded = {"tracking": {"tensorboard": True}}
    tracking = tracking_of(recorded, None, None, None,
                           {"project": "p", "entity": None, "mode": "offline", "dir": None})
    assert tracking.wandb.model_dump() == {"project": "p", "entity": None, "mode": "offline",
                                           "dir": None}
    assert tracking.tensorboard
    # the spec's section, with what an option changes in it
    recorded = {"tracking": {"wandb": {"project": "p", "mode": "offline", "entity": "e"}}}
    assert tracking_of(recorded, None, None, None, {"mode": "online"}).wandb.model_dump() == \
        {"project": "p", "entity": "e", "mode": "online", "dir": None}
    assert tracking_of({}, None, None, None, {"mode": "online"}).wandb is None  # no project

    folder = tmp_path / "sweeps" / "plain" / schema.RESULTS_DIR
    folder.mkdir(parents=True)
    (folder / schema.SWEEP_FILE).write_text(json.dumps({"spec": tiny_spec(tmp_path)}))
    result = invoke("track", str(folder.parent), "--wandb-project", "a/b")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --wandb-project: is 'a/b', but W&B names")
