"""A storage that stops taking writes while a sweep runs (a full disk, a read-only
remount) ends the sweep the way Ctrl-C does, with one line instead of Ray's tracebacks.

Three writers meet the storage during a sweep, and each one's refusal reaches
`StorageGuard`:
- the results sink records it (`ResultsSink.storage_error`) instead of raising;
- a trial reports its epoch without the checkpoint and says why (`STORAGE_ERROR`);
- Tune (its experiment state, deleting old checkpoints) logs it and goes on:
  `tune_refusals_to` takes those log records (their tracebacks would fill the user's
  screen) and hands them to the guard.
The guard then asks Tune to stop as on Ctrl-C: Tune's SIGUSR1 handler sets the same
event as its SIGINT one, so the loop ends, Tune snapshots its state where it can, and
unfinished trials are kept for `sweep resume`. Tune copies its experiment state over
the old files in place, so a full disk would leave them cut short (and Tune, handed a
cut state, starts the experiment afresh): `whole_tune_files` makes those copies whole
or absent, as every write of ours is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ray.tune import Callback

from orchestrator.engine.tune_compat import CONTROLLER_LOGGER, WRITER_LOGGERS, local_uploads
from orchestrator.errors import STORAGE_ERRNOS, StorageFailed, storage_problem, strerror
from orchestrator.results.atomic import write_atomic
from orchestrator.states import STORAGE_ERROR

# what Tune logs itself when the guard has stopped it: Ctrl-C's words, and the result
# files it could not write, which the tables and `sweep resume` account for
_STOP_NOISE = ("Stop signal received", "Trials did not complete",
               "Experiment has been interrupted", "Failed to fetch metrics")
_ERRNO = re.compile(r"\[Errno (\d+)\]")


class StopForStorage(Exception):
    """Raised out of Tune's loop when it cannot be stopped gracefully (Tune installs no
    signal handler when it runs outside the main thread)."""


class StorageGuard(Callback):
    """Stops the sweep at the first write the storage refused (the module's docstring).
    `problem` says why, in the system's words ('No space left on device')."""

    def __init__(self, sink: Any, lease_lost: Callable[[], str | None] = lambda: None):
        self.sink = sink
        self._lease_lost = lease_lost
        self.lease_lost: str | None = None  # why the sweep's lease is another driver's
        self.problem: str | None = None  # set when the guard asked Tune to stop
        self.noticed: str | None = None  # a refusal Tune logged, acted on at the step's end

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks into the experiment state; the lease (and its store
        # client) is this driver's alone: a restored guard starts with none
        return {**self.__dict__, "_lease_lost": _no_lease}

    def refused(self, problem: str) -> None:
        if self.problem is not None:
            return  # asked to stop already
        self.problem = problem
        handler = signal.getsignal(signal.SIGUSR1)
        if threading.current_thread() is threading.main_thread() and callable(handler):
            signal.raise_signal(signal.SIGUSR1)  # Tune's handler: the loop's Ctrl-C event
        else:
            raise StopForStorage(problem)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if result.get(STORAGE_ERROR):
            self.refused(str(result[STORAGE_ERROR]))

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self.lease_lost is None and (lost := self._lease_lost()) is not None:
            self.lease_lost = lost
            self.sink.stopped_writing = True  # the tables are the new holder's now
            self.refused(lost)
        elif self.sink.storage_error is not None:
            self.refused(strerror(self.sink.storage_error))
        elif self.noticed is not None:
            self.refused(self.noticed)

    @property
    def failure(self) -> str | None:
        """Why the storage refused a write during the sweep, if it did (also after the
        loop: the sink's and Tune's last writes come after its last step)."""
        sink_error = self.sink.storage_error
        return self.problem or self.noticed or (strerror(sink_error) if sink_error else None)


def _no_lease() -> None:
    return None


def _refusal_in(record: logging.LogRecord) -> str | None:
    """The storage's refusal a log record of Tune reports, in words, or None."""
    exc = record.exc_info[1] if record.exc_info else None
    problem = storage_problem(exc)
    if problem is not None:
        return strerror(problem)
    # the background syncer's failures come as a traceback in the message's text
    for number in _ERRNO.findall(record.getMessage()):
        if int(number) in STORAGE_ERRNOS:
            return os.strerror(int(number))
    return None


class _TuneRefusals(logging.Filter):
    def __init__(self, guard: StorageGuard):
        super().__init__()
        self.guard = guard

    def filter(self, record: logging.LogRecord) -> bool:
        # the controller also logs trials' own failures: a user's code that cannot write
        # its own files is the trial's error, not the storage's; its checkpoints are
        about_storage = (record.name != CONTROLLER_LOGGER
                         or "checkpoint" in record.getMessage())
        problem = (_refusal_in(record) if record.levelno >= logging.WARNING and about_storage
                   else None)
        if problem is not None:
            self.guard.noticed = self.guard.noticed or problem
            return False
        return not (self.guard.problem is not None
                    and record.getMessage().startswith(_STOP_NOISE))


@contextlib.contextmanager
def tune_refusals_to(guard: StorageGuard) -> Iterator[None]:
    """For the body of the `with`: Tune's log records of a write the storage refused go
    to `guard` (not to the screen), and so does Tune's own talk of the stop that
    follows."""
    refusals = _TuneRefusals(guard)
    loggers = [logging.getLogger(name) for name in WRITER_LOGGERS]
    for logger in loggers:
        logger.addFilter(refusals)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(refusals)


def storage_failed(folder: Any, problem: str, resume: str, where: str | None = None
                   ) -> StorageFailed:
    """The one line for a storage that refused a write: where, the system's words, and
    what to do (resume when Tune saved a state to resume from, else run again)."""
    saved = (folder / "tuner.pkl").is_file() and any(
        c.name.startswith("experiment_state-") for c in folder.children())
    then = (f"then `{resume}` continues it" if saved else
            "then run it again (Tune saved no state to resume from)")
    return StorageFailed(f"storage: cannot write {where or folder} ({problem}); the sweep "
                         f"stopped as on Ctrl-C: make room or make it writable, {then}")


@contextlib.contextmanager
def storage_errors(folder: Any, resume: str) -> Iterator[None]:
    """A write the storage refuses in the body of the `with` (the lease, sweep.json, a
    Tuner that cannot set up its folder) is `storage_failed`'s one line, exit 4."""
    try:
        yield
    except StopForStorage as exc:
        raise storage_failed(folder, str(exc), resume) from None
    except Exception as exc:
        problem = storage_problem(exc)
        if problem is None:
            raise
        path = str(problem.filename) if problem.filename else None
        inside = path is None or path.startswith(str(folder.parent))
        raise storage_failed(folder, strerror(problem), resume,
                             None if inside else path) from exc


def _copy_tree_whole(source: Path, destination: Path) -> None:
    """Every file under `source` to the same place under `destination`, each whole or
    not at all (a temp file beside it, then a rename)."""
    for root, _, files in os.walk(source):
        target = destination / Path(root).relative_to(source)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            write_atomic(target / name,
                         lambda tmp, src=Path(root, name): shutil.copyfile(src, tmp))


@contextlib.contextmanager
def whole_tune_files() -> Iterator[None]:
    """For the body of the `with`, the folders Tune's driver copies into a local storage
    (its experiment state, the searcher's, trial folders' result files) are copied file
    by file, whole or not at all. Tune copies them in place (pyarrow's copy_files): a
    full disk cuts the experiment state short, and Tune's restore of a cut state logs
    an error and starts the experiment afresh, every trial lost to `sweep resume`. Tune's
    copy is replaced through the seam (`tune_compat.local_uploads`)."""
    with local_uploads(_copy_tree_whole):
        yield
