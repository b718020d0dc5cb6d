"""Tracking: a sweep mirrored in a real MLflow server (one run per trial, every epoch's
points, the diagnosis) and in TensorBoard event files read back by TensorBoard's own
reader; a server lost mid-run costs one warning, and `sweep track` sends what it missed;
a resumed sweep continues the same runs. The mirror's bookkeeping is checked in-process."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from orchestrator.results import schema
from orchestrator.tracking.mirror import Mirror, end_of, epoch_metrics
from tests.faults import (
    free_port,
    kill_group,
    kill_run_when,
    mlflow_server,
    reported_epochs,
    start_sweep,
    wait_for,
)
from tests.helpers import heard, invoke, slow_spec, sweep_cli, tiny_spec, write_spec

CURVES = ("train_loss", "val_loss", "val_acc", "lr")


# -- the mirror's bookkeeping (no server) ----------------------------------------

class Recorder:
    """A tracker that keeps what it is sent, and can be made to fail."""

    key, where = "tracking.test", "memory"

    def __init__(self, fail_on: str | None = None):
        self.fail_on = fail_on
        self.points: list[tuple[str, int]] = []
        self.ended: list[tuple[str, tuple]] = []
        self.last: dict[str, int] = {}
        self.ends: dict[str, tuple] = {}
        self.finished = None

    def open(self, sweep):
        pass

    def last_epoch(self, trial_id):
        return self.last.get(trial_id)

    def end_state(self, trial_id):
        return self.ends.get(trial_id)

    def log_epochs(self, trial_id, settings, rows):
        if self.fail_on == "epochs":
            raise ConnectionError("[Errno 111] Connection refused")
        assert settings == {"optimizer.lr": 0.1}
        self.points += [(trial_id, r["epoch"]) for r in rows]
        self.last[trial_id] = rows[-1]["epoch"]

    def end_trial(self, trial_id, trial, end):
        self.ended.append((trial_id, end))
        self.ends[trial_id] = end

    def finish(self, trials, advice, interrupted):
        self.finished = interrupted

    def close(self):
        pass


def _rows(epochs: int, ended: bool):
    trial = {schema.TRIAL_ID: "t1", schema.STATUS: "terminated" if ended else "running",
             schema.STOP_REASON: "completed" if ended else None, "diagnosis": None,
             "diagnosis_reason": None, "config.optimizer.lr": 0.1, "config.model": None}
    history = {e: {schema.TRIAL_ID: "t1", "epoch": e, "val_loss": 1.0 / e, "lr": 0.1,
                   "val_acc": float("nan"), "exploited_from": None}
               for e in range(1, epochs + 1)}
    return {"t1": trial}, {"t1": history}


def test_the_mirror_sends_each_epoch_and_each_end_once():
    recorder = Recorder()
    mirror = Mirror([recorder], "sweep track x")
    with heard() as warnings:
        mirror.sync(*_rows(2, ended=False))
        mirror.sync(*_rows(2, ended=False))  # nothing new
        mirror.sync(*_rows(4, ended=True))
        mirror.sync(*_rows(4, ended=True))
    assert recorder.points == [("t1", 1), ("t1", 2), ("t1", 3), ("t1", 4)]
    assert recorder.ended == [("t1", ("terminated", "completed", "", ""))]
    assert warnings == []


def test_a_failing_tracker_is_reported_once_and_dropped_the_others_go_on():
    broken, working = Recorder(fail_on="epochs"), Recorder()
    mirror = Mirror([broken, working], "sweep track x")
    with heard() as warnings:
        mirror.sync(*_rows(2, ended=False))
        mirror.sync(*_rows(3, ended=False))
        mirror.finish([], [], interrupted=False)
    assert len(warnings) == 1 and "tracking.test" in warnings[0]
    assert "Connection refused" in warnings[0] and "`sweep track x`" in warnings[0]
    assert mirror.lost == ["tracking.test"] and broken.finished is None
    assert working.points == [("t1", 1), ("t1", 2), ("t1", 3)] and working.finished is False


def test_epoch_metrics_keep_finite_curves_and_leave_bookkeeping_out():
    row = {schema.TRIAL_ID: "t", "epoch": 3, "batch_size": 32, "val_loss": 0.5,
           "val_acc": float("nan"), "lr": 0.01, "exploited_from": None, "my_metric": 2}
    assert epoch_metrics(row) == {"val_loss": 0.5, "lr": 0.01, "my_metric": 2.0}
    assert end_of({schema.STOP_REASON: float("nan")}) is None


def test_the_live_callback_sends_from_its_own_thread_everything_once(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from orchestrator.results.storage import as_location
    from orchestrator.spec.tracking import Tracking
    from orchestrator.tracking import setup
    from orchestrator.tracking.live import TrackingCallback

    recorder = Recorder()
    monkeypatch.setattr(setup, "trackers_for", lambda tracking, folder: [recorder])
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "sweep.json").write_text(json.dumps({
        "spec": {"name": "s", "metric": "val_loss", "mode": "min"}, "started_at": "x"}))
    trials, history = _rows(0, ended=False)
    sink = SimpleNamespace(trials=trials, by_trial={"t1": {}},
                           frames=lambda: (pd.DataFrame(), None))
    callback = TrackingCallback(Tracking(tensorboard=True), as_location(tmp_path), sink,
                                "sweep track x", min_interval_s=0)
    callback.setup()
    for epoch in (1, 2, 3):
        sink.by_trial["t1"][epoch] = _rows(epoch, ended=False)[1]["t1"][epoch]
        callback.on_trial_result(0, [], SimpleNamespace(trial_id="t1"), {})
    sink.trials, _ = _rows(3, ended=True)
    callback.finish()
    callback.finish()  # once only
    assert recorder.points == [("t1", 1), ("t1", 2), ("t1", 3)]
    assert len(recorder.ended) == 1 and recorder.finished is False
    assert not callback._sender.is_alive()


def test_a_batch_of_points_never_splits_from_its_last_epoch_tag():
    from orchestrator.tracking.mirror import SweepIdentity
    from orchestrator.tracking.mlflow_runs import MlflowTracker

    calls = []

    class Client:
        def log_batch(self, run_id, metrics=(), params=(), tags=()):
            calls.append((len(metrics) + len(params) + len(tags), [t.key for t in tags]))

    tracker = MlflowTracker("http://127.0.0.1:1")
    tracker.client, tracker.runs = Client(), {"t": "run"}
    tracker.sweep = SweepIdentity("s", "2026-01-01T00:00:00", "f", "val_loss", "min")
    tracker.started_ms = 0
    rows = [{"epoch": e, "val_loss": 1.0, "train_loss": 1.0, "lr": 0.1, "val_acc": 0.5,
             "epoch_s": 0.1} for e in range(1, 401)]  # 5 points an epoch: 2000 in all
    tracker.log_epochs("t", {}, rows)
    assert all(size <= 1000 and keys == ["sweep.last_epoch"] for size, keys in calls)
    assert sum(size - 1 for size, _ in calls) == 2000 and tracker.last_epoch("t") == 400


# -- spec and command-line errors: one line, exit 2 -----------------------------------

def test_a_tracking_uri_of_no_known_scheme_is_refused(tmp_path):
    spec = write_spec(tmp_path, tiny_spec(tmp_path, tracking={"mlflow": {"uri": "ftp://x"}}))
    result = invoke("validate", str(spec))
    assert result.exit_code == 2
    assert "tracking.mlflow.uri: is 'ftp://x', but must be an MLflow tracking URI" in \
        result.stderr


def test_tensorboard_on_an_object_store_is_refused(tmp_path):
    spec = write_spec(tmp_path, tiny_spec(tmp_path, tracking={"tensorboard": True},
                                          storage="s3://bucket/sweeps"))
    result = invoke("validate", str(spec))
    assert result.exit_code == 2 and "tracking.tensorboard: writes event files" in \
        result.stderr


def test_an_mlflow_server_that_does_not_answer_stops_the_run_before_ray(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    spec = write_spec(tmp_path, tiny_spec(tmp_path, tracking={"mlflow": {"uri": uri}}))
    result = invoke("run", str(spec), "--quiet")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: tracking.mlflow.uri: {uri} "
                                                   "does not answer (Connection refused)")
    # the command that sends the tables later names this sweep's folder
    assert lines[0].endswith(f"`sweep track {tmp_path / 'sweeps' / 'tiny'}` sends them later)")
    assert not (tmp_path / "sweeps").exists()  # nothing written


# -- a real MLflow server and TensorBoard's reader (slow) -----------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _trial_runs(uri: str, experiment: str) -> dict[str, object]:
    """trial id -> its run; fails on a second run of one trial."""
    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], "tags.trial_id != ''", max_results=1000)
    ids = [r.data.tags["trial_id"] for r in runs]
    assert len(ids) == len(set(ids)), f"a trial has two runs: {sorted(ids)}"
    return {r.data.tags["trial_id"]: r for r in runs}


def assert_mirrors_the_tables(uri: str, experiment: str, results) -> None:
    """One run per trial; each curve's points are the history table's, epoch for epoch
    (no step twice); the end tags are the trials table's."""
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    history = pd.read_parquet(results / schema.HISTORY_FILE)
    runs = _trial_runs(uri, experiment)
    assert set(runs) == set(trials[schema.TRIAL_ID])
    client = _client(uri)
    for trial in trials.to_dict("records"):
        run = runs[trial[schema.TRIAL_ID]]
        table = history[history[schema.TRIAL_ID] == trial[schema.TRIAL_ID]]
        for curve in CURVES:
            expected = [(int(e), v) for e, v in zip(table["epoch"], table[curve])
                        if not math.isnan(v)]
            points = sorted((m.step, m.value)
                            for m in client.get_metric_history(run.info.run_id, curve))
            assert [p[0] for p in points] == [e[0] for e in expected], (trial, curve)
            assert [p[1] for p in points] == pytest.approx([e[1] for e in expected]), \
                (trial[schema.TRIAL_ID], curve)
        tags = run.data.tags
        for name in (schema.STOP_REASON, "diagnosis", "diagnosis_reason"):
            assert tags.get(name) == trial[name], (trial[schema.TRIAL_ID], name)
        assert run.data.params["optimizer.lr"] == str(trial["config.optimizer.lr"])
        assert run.info.status == "FINISHED"


@pytest.mark.slow
def test_a_sweep_in_mlflow_and_tensorboard_matches_its_tables(server, tmp_path, ray_address):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    spec = tiny_spec(tmp_path, name="tracked", num_samples=3,
                     search_space={"optimizer.lr": {"loguniform": [0.01, 0.3]}},
                     tracking={"mlflow": {"uri": server, "experiment": "tracked-exp"},
                               "tensorboard": True})
    result = sweep_cli("run", str(write_spec(tmp_path, spec)), "--quiet",
                       "--address", ray_address)
    assert result.returncode == 0, result.stderr
    assert "View run" not in result.stdout + result.stderr  # MLflow's chatter is off
    results = tmp_path / "sweeps" / "tracked" / schema.RESULTS_DIR
    assert_mirrors_the_tables(server, "tracked-exp", results)

    client = _client(server)
    parent = client.search_runs(
        [client.get_experiment_by_name("tracked-exp").experiment_id],
        "tags.`sweep.role` = 'sweep'")
    assert len(parent) == 1 and parent[0].info.status == "FINISHED"
    assert parent[0].data.tags["best_trial"] in _trial_runs(server, "tracked-exp")
    spec_text = client.download_artifacts(parent[0].info.run_id, "spec.yaml", str(tmp_path))
    assert "tracked" in open(spec_text).read()

    history = pd.read_parquet(results / schema.HISTORY_FILE)
    board = tmp_path / "sweeps" / "tracked" / "tensorboard"
    assert sorted(p.name for p in board.iterdir()) == sorted(history[schema.TRIAL_ID].unique())
    for trial_id, table in history.groupby(schema.TRIAL_ID):
        events = EventAccumulator(str(board / trial_id))
        events.Reload()
        scalars = events.Scalars("val_loss")
        assert [s.step for s in scalars] == list(table["epoch"])
        assert [s.value for s in scalars] == pytest.approx(list(table["val_loss"]), rel=1e-6)
        assert events.PluginTagToContent("hparams")  # the HParams plugin's summaries


@pytest.mark.slow
def test_a_server_lost_mid_run_loses_nothing_after_sweep_track(tmp_path, ray_address):
    spec = slow_spec(tmp_path, "lost")
    folder = tmp_path / "sweeps" / "lost"
    port = free_port()
    spec["tracking"] = {"mlflow": {"uri": f"http://127.0.0.1:{port}"}}
    proc = None
    try:
        with mlflow_server(tmp_path / "mlflow", port) as uri:
            proc = start_sweep("run", str(write_spec(tmp_path, spec)), "--quiet",
                               "--address", ray_address)
            wait_for(lambda: any("sweep.last_epoch" in r.data.tags
                                 for r in _trial_runs(uri, "lost").values())
                     if _client(uri).get_experiment_by_name("lost") else None,
                     180, "the first points in MLflow", every_s=0.5)
        # the server is gone (killed with its process group); the sweep goes on
        out, err = proc.communicate(timeout=300)
    finally:
        if proc is not None and proc.poll() is None:
            kill_group(proc)
            proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: tracking.mlflow")]
    assert len(warnings) == 1, err
    assert f"`sweep track {folder}`" in warnings[0]
    with mlflow_server(tmp_path / "mlflow", port) as uri:
        replayed = sweep_cli("track", str(folder))
        assert replayed.returncode == 0, replayed.stderr
        assert_mirrors_the_tables(uri, "lost", folder / schema.RESULTS_DIR)
        again = sweep_cli("track", str(folder))
        assert again.returncode == 0 and "sent 0 new epoch points" in again.stderr


@pytest.mark.slow
def test_a_resumed_sweep_continues_the_same_runs(server, tmp_path, ray_address):
    spec = slow_spec(tmp_path, "resumed")
    spec["tracking"] = {"mlflow": {"uri": server}}
    folder = tmp_path / "sweeps" / "resumed"
    results = folder / schema.RESULTS_DIR
    kill_run_when(lambda: reported_epochs(results) >= 6, "six epochs reported",
                  "run", str(write_spec(tmp_path, spec)), "--quiet", "--address", ray_address)
    before = {t: r.info.run_id for t, r in _trial_runs(server, "resumed").items()}
    assert before, "the killed driver had sent runs"
    resumed = sweep_cli("resume", str(folder), "--address", ray_address)
    assert resumed.returncode == 0, resumed.stderr
    assert_mirrors_the_tables(server, "resumed", results)
    after = {t: r.info.run_id for t, r in _trial_runs(server, "resumed").items()}
    assert {t: after[t] for t in before} == before  # the same runs, continued
    again = sweep_cli("track", str(folder))
    assert again.returncode == 0 and "sent 0 new epoch points" in again.stderr


def test_track_needs_a_tracker(tmp_path):
    folder = tmp_path / "sweeps" / "plain" / schema.RESULTS_DIR
    folder.mkdir(parents=True)
    spec = tiny_spec(tmp_path, name="plain")
    spec["mode"] = "max"
    spec["metric"] = "val_acc"
    (folder / schema.SWEEP_FILE).write_text(
        json.dumps({"spec": spec, "status": "finished"}))
    result = invoke("track", str(folder.parent))
    assert result.exit_code == 2
    assert "has no `tracking:` section; name a tracker: --mlflow-uri URI" in result.stderr
