"""Tracking: what mirroring a sweep into MLflow and TensorBoard costs the driver.

The live tracking callback runs in the driver's Tune loop, after the results sink: every
millisecond it spends is a millisecond the loop does not schedule trials. This measures
the mirror alone (no Ray, so the numbers are its own): T trials x E epochs reported one
epoch at a time, each synced as it arrives (the callback's worst case: it syncs at most
every 2 s), to a real `mlflow server` on 127.0.0.1 (sqlite) and to TensorBoard event
files; the live callback itself, where the Tune loop only queues copies of the rows and a
sender thread talks to MLflow (the loop's seconds, and the sender's until done); then
`sweep track`'s replay of the same rows into a fresh experiment.

    python -m bench.tracking [--trials 20] [--epochs 20]

Goal (issue #20): the Tune loop spends well under a millisecond per reported epoch on
tracking, whatever the server's latency.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench.record import bench_parser, write_record

REPO = Path(__file__).resolve().parents[1]


def _rows(trials: int, epochs: int):
    trial_rows = {f"t{i:04d}": {"trial_id": f"t{i:04d}", "status": "running",
                                "stop_reason": None, "config.optimizer.lr": 10 ** -(1 + i % 4),
                                "config.batch_size": 32, "config.model.hidden": 64}
                  for i in range(trials)}
    history = {tid: {e: {"trial_id": tid, "epoch": e, "lr": 0.01, "train_loss": 1 / e,
                         "val_loss": 1.1 / e, "val_acc": 1 - 1 / (e + 1), "epoch_s": 0.2}
                     for e in range(1, epochs + 1)} for tid in trial_rows}
    return trial_rows, history


def _live(mirror, trial_rows, history, epochs: int) -> float:
    """Seconds to sync every epoch as it arrives, trials interleaved as Tune reports."""
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        for tid in trial_rows:
            seen = {tid: {e: r for e, r in history[tid].items() if e <= epoch}}
            mirror.sync(trial_rows, seen, only=[tid])
    for tid, row in trial_rows.items():  # the trials' ends
        row.update(status="terminated", stop_reason="completed", diagnosis="healthy",
                   diagnosis_reason="levelled")
        mirror.sync(trial_rows, history, only=[tid])
    return time.perf_counter() - started


class _Trial:
    def __init__(self, trial_id: str):
        self.trial_id = trial_id


def _callback(uri: str, tmp: str, trials: int, epochs: int) -> tuple[dict, dict]:
    """The Tune loop's seconds inside the tracking callback (syncing every result, its
    worst case), and the seconds until the sender thread has sent everything."""
    import json
    from types import SimpleNamespace

    from orchestrator.results.storage import as_location
    from orchestrator.spec.tracking import Tracking
    from orchestrator.tracking.live import TrackingCallback

    folder = Path(tmp) / "live"
    (folder / "results").mkdir(parents=True)
    spec = {"name": "bench-callback", "metric": "val_acc", "mode": "max",
            "search_space": {"optimizer.lr": {}}}
    (folder / "results" / "sweep.json").write_text(json.dumps(
        {"spec": spec, "started_at": "2026-01-01T00:00:00"}))
    trial_rows, history = _rows(trials, epochs)
    sink = SimpleNamespace(trials=trial_rows, by_trial={t: {} for t in trial_rows},
                           results_dir=as_location(folder / "results"),
                           frames=lambda: (__import__("pandas").DataFrame(), None))
    callback = TrackingCallback(Tracking(mlflow={"uri": uri}), as_location(folder), sink,
                                "sweep track", min_interval_s=0)
    started = time.perf_counter()
    callback.setup()
    in_loop = time.perf_counter() - started
    for epoch in range(1, epochs + 1):
        for tid in trial_rows:
            sink.by_trial[tid][epoch] = history[tid][epoch]
            before = time.perf_counter()
            callback.on_trial_result(0, [], _Trial(tid), {})
            in_loop += time.perf_counter() - before
    callback.finish()
    total = time.perf_counter() - started
    assert not callback.lost
    points = trials * epochs
    return ({"seconds": in_loop, "ms_per_epoch": 1000 * in_loop / points},
            {"seconds": total, "ms_per_epoch": 1000 * total / points})


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from orchestrator.tracking.mirror import Mirror, SweepIdentity
    from orchestrator.tracking.mlflow_runs import MlflowTracker
    from orchestrator.tracking.tensorboard_runs import TensorBoardTracker
    from tests.faults import mlflow_server

    points = args.trials * args.epochs
    rows = {}
    with tempfile.TemporaryDirectory() as tmp, mlflow_server(Path(tmp) / "mlflow") as uri:
        def identity(name: str) -> SweepIdentity:
            return SweepIdentity(name, "2026-01-01T00:00:00", tmp, "val_acc", "max",
                                 {"name": name, "search_space": {"optimizer.lr": {}}})

        for name, make in (("tensorboard", lambda: TensorBoardTracker(Path(tmp) / "tb")),
                           ("mlflow", lambda: MlflowTracker(uri, "bench-live"))):
            mirror = Mirror([make()], "sweep track")
            mirror.open(identity(f"bench-{name}"))
            seconds = _live(mirror, *_rows(args.trials, args.epochs), args.epochs)
            mirror.finish([], [], interrupted=False)
            assert not mirror.lost, name
            rows[name] = {"seconds": seconds, "ms_per_epoch": 1000 * seconds / points}
        # the live callback: what the Tune loop itself spends (it only queues copies;
        # the sender thread talks to MLflow), and when the sender is done
        rows["mlflow live (loop)"], rows["mlflow live (sender)"] = _callback(
            uri, tmp, args.trials, args.epochs)
        # the replay: every row of a finished sweep at once, into a fresh experiment
        mirror = Mirror([MlflowTracker(uri, "bench-replay")], "sweep track")
        mirror.open(identity("bench-replay"))
        trial_rows, history = _rows(args.trials, args.epochs)
        for row in trial_rows.values():
            row.update(status="terminated", stop_reason="completed")
        started = time.perf_counter()
        sent = mirror.sync(trial_rows, history)
        seconds = time.perf_counter() - started
        assert sent == points
        rows["mlflow replay"] = {"seconds": seconds, "ms_per_epoch": 1000 * seconds / points}

    print(f"{args.trials} trials x {args.epochs} epochs = {points} reported epochs")
    print(f"{'tracker':<24}{'seconds':>10}{'ms per epoch':>16}")
    for name, row in rows.items():
        print(f"{name:<24}{row['seconds']:>10.2f}{row['ms_per_epoch']:>16.2f}")
    write_record("tracking", args.out, args, rows=rows)


if __name__ == "__main__":
    main()
