"""Errors of a trial's data or code are not retried.

Tune retries a failed trial `failure.max_failures` times, whatever the error: right for
a worker that died, wasted for a factory that raises ValueError on its data, which
raises it again at every try (and a user's factory may be slow, or costly, to call).
Tune has no retry by kind of error, so the trial does it itself: an error of these
kinds raised before the trial's first report in this attempt is raised as `NotRetried`
(the user's error and its text kept), after leaving its text in `NOT_RETRIED_FILE` in
the trial's folder; a retry finds the file and fails at once with the same text,
without running the user's code. The driver's `NoRetryOfDataErrors` callback then ends
the retries (engine/stoppers.py). `sweep resume --resume-errored` removes the files:
the user has fixed the data or the code.

A `DataOrCodeError` is not retried even when it comes after the first report: one that
the trial finds while training (a loop's report of an epoch it already reported, the
first non-finite loss traced to non-finite data) would come again on every try.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pyarrow.fs as pafs

from orchestrator.states import NOT_RETRIED_FILE

# what a data set or code that does not fit raises; a dead worker, a full GPU or a
# network error raise something else, and are retried
KINDS = (ValueError, TypeError, ImportError, AttributeError, KeyError)


class NotRetried(Exception):
    """An error of the trial's data or code, before its first report: not retried."""


class DataOrCodeError(ValueError):
    """A mistake of the trial's data or code, found at any time: not retried, even after
    the trial's first report (the user's data and loops raise their own kinds)."""


def _marker() -> tuple[pafs.FileSystem, str]:
    """NOT_RETRIED_FILE in the trial's folder on the sweep's storage (a folder or an
    object store: whichever node a retry lands on reads it there). `get_trial_dir` is
    a staging folder of this node, not the storage."""
    from ray import tune

    storage = tune.get_context().get_storage()
    return storage.storage_filesystem, f"{storage.trial_fs_path}/{NOT_RETRIED_FILE}"


def fail_if_failed_before() -> None:
    """At a trial's start: an earlier attempt failed with an error of its data or code
    (before its first report, or a `DataOrCodeError`); fail with its text, running
    nothing of the user's."""
    fs, path = _marker()
    if fs.get_file_info(path).type == pafs.FileType.File:
        with fs.open_input_stream(path) as stream:
            raise NotRetried(stream.readall().decode())


@contextlib.contextmanager
def first_report_pending(reported) -> Iterator[None]:
    """Around a trial's work: an error of `KINDS` raised while `reported()` is False,
    or a `DataOrCodeError` at any time, becomes `NotRetried`, its text left for the
    retries."""
    try:
        yield
    except KINDS as exc:
        if not reported():
            when = "raised before the trial's first epoch was reported: "
        elif isinstance(exc, DataOrCodeError):
            when = ""
        else:
            raise
        text = f"{type(exc).__name__}: {exc} ({when}an error of its data or code, not retried)"
        fs, path = _marker()
        with contextlib.suppress(OSError):  # unwritten, the retries run the code again
            fs.create_dir(path.rsplit("/", 1)[0])
            with fs.open_output_stream(path) as stream:
                stream.write(text.encode())
        raise NotRetried(text) from exc
