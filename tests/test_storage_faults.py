"""A storage that stops taking writes while a sweep runs (a full disk, a read-only
remount, a refused write of the tables) ends the sweep as Ctrl-C does: one line, exit
4, Tune's state and the tables whole, and `sweep resume` loses no row once the storage
takes writes again. The real faults need a tmpfs (mounting one needs root: skipped
where the machine refuses it); the refused write of the tables is simulated in the
driver's own process and runs everywhere. The pieces are checked in-process without
Ray."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import StorageFailed, storage_problem
from orchestrator.results import schema
from tests.faults import ended_at_exit, ended_trials, start_sweep, wait_for
from tests.helpers import (
    REPO,
    SLOW_EPOCHS,
    SLOW_TRIALS,
    invoke,
    slow_spec,
    sweep_cli,
    tiny_spec,
    write_spec,
)

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def assert_complete(results: Path) -> None:
    """Every trial once, ended; every epoch of every trial once, no gap."""
    from orchestrator.results.folder import read_history, read_trials

    trials, history = read_trials(results), read_history(results)
    assert len(trials) == SLOW_TRIALS and trials[schema.TRIAL_ID].is_unique
    assert (trials[schema.STOP_REASON] == "completed").all(), trials
    assert not history.duplicated(list(schema.HISTORY_KEY)).any()
    for _, epochs in history.groupby(schema.TRIAL_ID)["epoch"]:
        assert sorted(epochs) == list(range(1, SLOW_EPOCHS + 1))


def assert_one_line(err: str, folder: Path, words: str, resumable: bool = True) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err[-3000:]
    assert err.startswith(f"error: storage: cannot write {folder} ({words}); the sweep "
                          "stopped as on Ctrl-C: make room or make it writable"), err
    if resumable:
        assert err.rstrip().endswith(f"then `sweep resume {folder}` continues it"), err


# -- real faults on a tmpfs --------------------------------------------------------


@contextlib.contextmanager
def small_disk(size: str = "8m") -> Iterator[Path]:
    """A tmpfs of `size`, unmounted afterwards; the test is skipped where mounting one
    is not allowed (not root, no CAP_SYS_ADMIN)."""
    point = Path(tempfile.mkdtemp(prefix="sweep-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()})")
    try:
        yield point
    finally:
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)  # still busy
        point.rmdir()


def fill(point: Path) -> None:
    """Every free byte of the tmpfs in one file."""
    with open(point / "filler", "wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()


def remount(point: Path, mode: str) -> None:
    """Make the tmpfs read-only (or writable again). A mount with a file open for
    writing refuses to become read-only: a trial or Tune may be writing one just then."""
    def done() -> bool:
        return subprocess.run(["mount", "-o", f"remount,{mode}", str(point)],
                              capture_output=True).returncode == 0
    wait_for(done, 30, f"a remount {mode} of {point}", every_s=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("fault, words", [
    ("full", "No space left on device"),
    ("read-only", "Read-only file system"),
])
def test_a_storage_that_refuses_writes_mid_sweep_stops_it_and_resume_loses_nothing(
        tmp_path, ray_address, fault, words):
    with small_disk() as disk:
        spec = slow_spec(tmp_path, "refused")
        spec["storage"] = str(disk / "sweeps")
        folder = disk / "sweeps" / "refused"
        results = folder / schema.RESULTS_DIR
        with ended_at_exit(start_sweep("run", str(write_spec(tmp_path, spec)), "--address",
                                       ray_address, "--quiet")) as proc:
            wait_for(lambda: ended_trials(results) >= 2 or proc.poll() is not None, 180,
                     "two trials to end")
            assert proc.poll() is None, "the sweep ended before the fault"
            fill(disk) if fault == "full" else remount(disk, "ro")
            _, err = proc.communicate(timeout=180)
        assert proc.returncode == 4, err[-3000:]
        assert_one_line(err, folder, words)

        # what is on the storage is whole: the tables read, Tune's state parses
        from orchestrator.results.folder import read_history, read_trials

        before = read_trials(results)
        assert (before[schema.STOP_REASON].notna()).sum() >= 2
        assert not read_history(results).duplicated(list(schema.HISTORY_KEY)).any()
        for state in folder.glob("experiment_state-*.json"):
            json.loads(state.read_text())

        # still refused: one line before Ray starts
        again = sweep_cli("resume", str(folder), "--address", ray_address, "--quiet")
        assert again.returncode == 4, again.stderr[-3000:]
        assert again.stderr == (f"error: storage: cannot write {folder} ({words}); nothing "
                                "was started: make room or make it writable, then run the "
                                "command again\n")

        (disk / "filler").unlink() if fault == "full" else remount(disk, "rw")
        resumed = sweep_cli("resume", str(folder), "--address", ray_address, "--quiet")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "Traceback" not in resumed.stderr
        assert_complete(results)
        sweep = json.loads((results / schema.SWEEP_FILE).read_text())
        assert sweep["status"] == "finished" and sweep.get("reason") is None
        assert [s["command"] for s in sweep["segments"]] == ["run", "resume"]


# -- a refused write of the tables, simulated in the driver ------------------------

# The console script's `main`, with the tables' writes refused (ENOSPC) once a file
# named by the first argument exists: the driver's writes of Parquet fail, sweep.json
# and Tune's own state can still be written.
REFUSING_DRIVER = """
import errno, os, sys
from pathlib import Path
from orchestrator.results import tables
trigger, written = Path(sys.argv.pop(1)), tables.write_arrow_atomic
def refusing(table, path):
    if trigger.exists():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    written(table, path)
tables.write_arrow_atomic = refusing
from orchestrator.cli import main
sys.argv[0] = "sweep"
main()
"""


@pytest.mark.slow
def test_a_refused_write_of_the_tables_is_recorded_in_sweep_json_and_resumed(
        tmp_path, ray_address):
    spec = slow_spec(tmp_path, "tables-refused")
    folder = tmp_path / "sweeps" / "tables-refused"
    results = folder / schema.RESULTS_DIR
    trigger = tmp_path / "refuse-now"
    proc = subprocess.Popen(
        [sys.executable, "-c", REFUSING_DRIVER, str(trigger), "run",
         str(write_spec(tmp_path, spec)), "--address", ray_address, "--quiet"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    with ended_at_exit(proc):
        wait_for(lambda: ended_trials(results) >= 2 or proc.poll() is not None, 180,
                 "two trials to end")
        assert proc.poll() is None, "the sweep ended before the fault"
        trigger.write_text("")
        _, err = proc.communicate(timeout=180)
    assert proc.returncode == 4, err[-3000:]
    assert_one_line(err, folder, "No space left on device")
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["status"] == "interrupted"
    assert sweep["reason"] == "storage: No space left on device"
    assert sweep["segments"][0]["status"] == "interrupted"
    assert sweep["segments"][0]["reason"] == "storage: No space left on device"

    resumed = sweep_cli("resume", str(folder), "--address", ray_address, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_complete(results)
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert [s["status"] for s in sweep["segments"]] == ["interrupted", "finished"]


# -- the pieces, in-process and without Ray ----------------------------------------


def test_storage_problems_are_told_from_other_errors_through_their_causes():
    assert storage_problem(ENOSPC) is ENOSPC
    for code in (errno.EROFS, errno.EACCES, errno.ENOTDIR, errno.EDQUOT):
        assert storage_problem(OSError(code, os.strerror(code))) is not None
    assert storage_problem(OSError(errno.ECONNREFUSED, "refused")) is None
    assert storage_problem(ValueError("bad data")) is None
    try:
        try:
            raise ENOSPC
        except OSError as exc:
            raise RuntimeError("Ray wrapped it") from exc
    except RuntimeError as wrapped:
        assert storage_problem(wrapped) is ENOSPC


def test_a_sink_whose_write_is_refused_keeps_its_rows_and_says_why(tmp_path, monkeypatch):
    from orchestrator.results import tables
    from orchestrator.results.folder import read_trials
    from orchestrator.results.sink import ResultsSink

    sink = ResultsSink(tmp_path / "results", "val_acc", "max")
    sink.setup()
    row = {schema.TRIAL_ID: "t_00000", schema.STATUS: "running"}
    sink.trials_table.put("t_00000", row)
    written = tables.write_arrow_atomic

    def refused(table, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(tables, "write_arrow_atomic", refused)
    sink.flush(force=True)  # no exception out of a Tune hook
    sink.write_whole()
    assert sink.storage_error is not None and sink.storage_error.errno == errno.ENOSPC
    assert read_trials(tmp_path / "results") is None  # nothing half-written

    monkeypatch.setattr(tables, "write_arrow_atomic", written)  # space is back
    sink.write_whole()
    assert list(read_trials(tmp_path / "results")[schema.TRIAL_ID]) == ["t_00000"]

    monkeypatch.setattr(tables, "write_arrow_atomic", lambda *a: 1 / 0)
    sink.trials_table.put("t_00001", {**row, schema.TRIAL_ID: "t_00001"})
    with pytest.raises(ZeroDivisionError):  # any other error is not the storage's
        sink.flush(force=True)


@pytest.fixture
def usr1() -> Iterator[list]:
    """SIGUSR1 recorded, as Tune's handler sets its Ctrl-C event."""
    received: list = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: received.append("SIGUSR1"))
    try:
        yield received
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_the_guard_stops_tune_once_at_the_first_refusal(usr1):
    from orchestrator.engine.storage_guard import StorageGuard
    from orchestrator.states import STORAGE_ERROR

    class Sink:
        storage_error = None

    guard = StorageGuard(Sink())
    guard.on_trial_result(1, [], None, {"epoch": 3})
    guard.on_step_end(1, [])
    assert guard.failure is None and usr1 == []
    guard.on_trial_result(2, [], None, {"epoch": 4, STORAGE_ERROR: "Read-only file system"})
    guard.sink.storage_error = ENOSPC
    guard.on_step_end(2, [])
    time.sleep(0.01)
    assert usr1 == ["SIGUSR1"]  # once
    assert guard.failure == "Read-only file system"  # the first refusal


def test_a_lease_taken_over_stops_tune_and_the_tables_writes(usr1):
    """The sweep's lease on an object store taken over by another driver (this one was
    taken for gone): the guard stops Tune as on Ctrl-C and the sink writes no more."""
    from orchestrator.engine.storage_guard import StorageGuard

    class Sink:
        storage_error = None
        stopped_writing = False

    lost: list[str] = []
    guard = StorageGuard(Sink(), lease_lost=lambda: lost[0] if lost else None)
    guard.on_step_end(1, [])
    assert guard.lease_lost is None and usr1 == [] and not guard.sink.stopped_writing
    lost.append("the lease s3://b/.x.lease was taken over by another driver")
    guard.on_step_end(2, [])
    guard.on_step_end(3, [])
    time.sleep(0.01)
    assert usr1 == ["SIGUSR1"] and guard.sink.stopped_writing
    assert guard.lease_lost == guard.failure == lost[0]


class Shown(logging.Handler):
    """What a logger passed on to its handlers (the screen)."""

    def __init__(self, *loggers: logging.Logger):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        for logger in loggers:
            logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_tunes_logged_refusals_reach_the_guard_not_the_screen():
    from orchestrator.engine.storage_guard import StorageGuard, tune_refusals_to

    class Sink:
        storage_error = None

    guard = StorageGuard(Sink())
    state = logging.getLogger("ray.tune.execution.experiment_state")
    syncer = logging.getLogger("ray.train._internal.syncer")
    controller = logging.getLogger("ray.tune.execution.tune_controller")
    shown = Shown(state, syncer, controller)
    with tune_refusals_to(guard):
        try:
            raise ENOSPC
        except OSError:
            state.error("Saving experiment state to storage failed", exc_info=True)
        syncer.warning("Last sync command failed with the following error:\nTraceback ...\n"
                       "OSError: [Errno 30] Read-only file system")
        state.warning("something else")
        try:
            raise PermissionError(errno.EACCES, "Permission denied", "/data/of/the/user")
        except OSError:  # a trial's own failure: the trial's error, shown as Tune shows it
            controller.error("Trial task failed for trial t_00000", exc_info=True)
    assert [r.getMessage() for r in shown.records] == ["something else",
                                                       "Trial task failed for trial t_00000"]
    assert guard.noticed == "No space left on device" and guard.problem is None
    state.warning("after the sweep")
    assert shown.records[-1].getMessage() == "after the sweep"  # the filter is gone
    for logger in (state, syncer, controller):
        logger.removeHandler(shown)


def test_tunes_uploads_to_a_folder_are_whole_or_absent(tmp_path, monkeypatch):
    """Ray's syncer still calls the function `whole_tune_files` replaces, and a copy the
    disk refuses leaves the old file as it was (Tune copied in place: a cut state)."""
    import shutil

    import pyarrow.fs as pafs
    from ray.train._internal.storage import _FilesystemSyncer

    from orchestrator.engine.storage_guard import whole_tune_files

    staging, storage = tmp_path / "staging", tmp_path / "storage"
    (staging / "t_00000").mkdir(parents=True)
    (staging / "experiment_state-x.json").write_text('{"new": true}')
    (staging / "t_00000" / "result.json").write_text("{}\n")
    storage.mkdir()
    (storage / "experiment_state-x.json").write_text('{"old": true}')
    syncer = _FilesystemSyncer(storage_filesystem=pafs.LocalFileSystem())
    with whole_tune_files():
        upload, kwargs = syncer._sync_up_command(local_path=str(staging), uri=str(storage))
        copy = shutil.copyfile

        def cut_short(source, target):
            Path(target).write_text('{"ne')
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

        monkeypatch.setattr(shutil, "copyfile", cut_short)
        with pytest.raises(OSError):
            upload(**kwargs)
        assert json.loads((storage / "experiment_state-x.json").read_text()) == {"old": True}
        assert not [p for p in storage.rglob(".*")]  # no temp file left
        monkeypatch.setattr(shutil, "copyfile", copy)
        upload(**kwargs)
    assert json.loads((storage / "experiment_state-x.json").read_text()) == {"new": True}
    assert (storage / "t_00000" / "result.json").read_text() == "{}\n"
    upload_after, _ = syncer._sync_up_command(local_path=str(staging), uri=str(storage))
    assert upload_after is not upload  # Ray's own again


def test_a_storage_under_a_file_is_one_line_and_exit_4_before_ray(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    spec = write_spec(tmp_path, tiny_spec(tmp_path, storage=str(blocker / "sweeps")))
    result = invoke("run", str(spec), "--quiet")
    assert result.exit_code == 4, result.output
    assert result.stderr == (f"error: storage: cannot write {blocker / 'sweeps'} ({blocker} "
                             "is a file, not a folder); nothing was started: make room or "
                             "make it writable, then run the command again\n")
    assert StorageFailed.exit_code == 4


def test_a_cut_tune_state_is_one_line_not_a_fresh_start(tmp_path):
    """Tune restores a state it cannot read by starting the experiment afresh (every
    trial lost): resume refuses it before Ray starts."""
    from orchestrator.results.provenance import begin_segment
    from orchestrator.spec import spec_from_mapping

    spec = spec_from_mapping(tiny_spec(tmp_path, name="cut"))
    folder = tmp_path / "sweeps" / "cut"
    begin_segment(folder / schema.RESULTS_DIR, spec.resolved(), "run")
    (folder / "tuner.pkl").write_bytes(b"")
    state = folder / "experiment_state-2026-01-01_00-00-00.json"
    state.write_text('{"trial_data": ["ab')
    result = invoke("resume", str(folder), "--quiet")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {state}: Ray Tune's experiment state is not "
                                    "readable (")
    assert result.stderr.endswith("the sweep cannot be resumed: start it again with "
                                  "`sweep run SPEC --overwrite`\n")
    older = folder / "experiment_state-2025-01-01_00-00-00.json"
    older.write_text("{}")
    assert "move it aside to resume from the state the run before saved" in invoke(
        "resume", str(folder), "--quiet").stderr


@pytest.mark.slow
def test_a_full_disk_at_sweep_json_s_last_write_is_one_line_and_resume_records_the_end(
        tmp_path, ray_address, monkeypatch):
    """The tables are written, then the disk fills before sweep.json records the end:
    one line, exit 4, nothing lost; `sweep resume` runs nothing again and records it."""
    from orchestrator.engine import resume as resume_module
    from orchestrator.engine import run as run_module
    from orchestrator.engine.run import run_sweep
    from orchestrator.results import provenance
    from orchestrator.results.folder import read_trials
    from orchestrator.spec import spec_from_mapping
    from tests.helpers import tiny_spec

    ended = provenance.end_segment  # what the driver's SegmentEnd writes with

    def refused(results_dir, spec, **fields):
        if fields.get("status") == "finished":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(results_dir))
        ended(results_dir, spec, **fields)

    monkeypatch.setattr(provenance, "end_segment", refused)
    spec = spec_from_mapping(tiny_spec(tmp_path, name="last-write"))
    with pytest.raises(StorageFailed) as failed:
        run_sweep(spec)
    folder = tmp_path / "sweeps" / "last-write"
    assert str(failed.value) == (
        f"storage: cannot write {folder / schema.RESULTS_DIR / schema.SWEEP_FILE} (No space "
        f"left on device); the sweep ran to its end and its tables are written: make room, "
        f"then `sweep resume {folder}` records its end")
    assert failed.value.exit_code == 4
    results = folder / schema.RESULTS_DIR
    assert json.loads((results / schema.SWEEP_FILE).read_text())["status"] == "running"
    trials = read_trials(results)
    assert len(trials) == 2 and trials[schema.STOP_REASON].notna().all()

    monkeypatch.setattr(provenance, "end_segment", ended)  # space is back
    outcome = resume_module.resume_sweep(resume_module.plan_resume(
        run_module.open_storage(str(folder))))
    sweep = json.loads((results / schema.SWEEP_FILE).read_text())
    assert sweep["status"] == "finished" and sweep["segments"][-1]["trials_ended"] == 0
    assert len(outcome.trials) == 2
