"""The project's error classes, its exit codes and its warning category.

Everything a user can get wrong (spec, options, data files, sweep folders) raises an
`OrchestratorError`; the CLI prints its message as one line and exits with its
`exit_code` (`ExitCode`).
"""

from __future__ import annotations

import errno
import os
import warnings
from enum import IntEnum


class ExitCode(IntEnum):
    """The `sweep` command's exit codes, defined here only."""

    OK = 0  # every trial ended without error
    TRIALS_FAILED = 1  # the sweep ran but some trials errored (results are still written)
    FAILED = 1  # (the same code) a job Ray reports failed without its driver's own code
    BAD_INPUT = 2  # bad input, reported as one line
    RAY_UNAVAILABLE = 3  # Ray could not be started or joined, or was lost (one line)
    STORAGE_FAILED = 4  # the storage refused a write: stopped as on Ctrl-C (one line)
    INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C before every trial ended (state kept)
    TERMINATED = 143  # 128 + SIGTERM: the same after SIGTERM (ray job stop, Slurm, k8s)

# what an error message quotes of a value the user gave: enough to find it, never a
# screenful (a YAML alias bomb expands to gigabytes)
SHOWN_CHARS = 300


def shown(value: object) -> str:
    """repr(value), cut to SHOWN_CHARS without building the whole repr first."""
    import reprlib

    short = reprlib.Repr()
    short.maxstring = short.maxother = SHOWN_CHARS
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 10
    short.maxlevel = 3
    text = short.repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none): what a
    one-line error quotes of an exception from a library."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SweepWarning(UserWarning):
    """The category of this project's warnings (`warnings.warn(message, SweepWarning)`):
    a library user filters them with `warnings.filterwarnings(..., category=SweepWarning)`;
    the CLI prints each as one line."""


def warn(message: str) -> None:
    """Tell the user `message` (one line) as a `SweepWarning` of the caller."""
    warnings.warn(message, SweepWarning, stacklevel=3)


class OrchestratorError(Exception):
    """A user-facing error: the message alone says what is wrong and where."""

    exit_code = ExitCode.BAD_INPUT


class SpecError(OrchestratorError):
    """A sweep spec (file or --set override) is invalid."""

    def __init__(self, source: str, key: str, problem: str):
        problem = problem if len(problem) <= 4 * SHOWN_CHARS else problem[:4 * SHOWN_CHARS] + "..."
        self.source, self.key, self.problem = source, key, problem
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + problem)


class SweepBusy(OrchestratorError):
    """Another driver holds the sweep's lease (results/lease.py): one writer at a time."""

    @classmethod
    def held(cls, name: str, holder: dict | None, lease: object,
             renewed_s: float | None = None) -> SweepBusy:
        """The refusal naming who holds the lease of sweep `name` (its lease file's
        `holder` record, if readable) and since when."""
        who = "another driver"
        if holder:
            renewed = f", renewed {renewed_s:.0f} s ago" if renewed_s is not None else ""
            who = (f"`sweep {holder.get('command', '?')}` (pid {holder.get('pid', '?')} on "
                   f"{holder.get('host', '?')}, since {holder.get('since', '?')}{renewed})")
        return cls(f"name: sweep {name!r} is being written by {who}; one writer at a time: "
                   f"wait for it to end, or choose another --name (lease: {lease})")


class RayUnavailable(OrchestratorError):
    """Ray could not be started or joined: the machine or the cluster, not the input."""

    exit_code = ExitCode.RAY_UNAVAILABLE


# What a storage that cannot take a write says: full (or over quota), read-only, not
# writable by us, or a path through something that is not a folder.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                            errno.EPERM, errno.ENOTDIR})


def storage_problem(exc: BaseException | None) -> OSError | None:
    """The OSError of a storage that cannot be written behind `exc` (itself, or what
    caused it: Ray and pyarrow wrap them), or None when it is some other error."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def strerror(exc: OSError) -> str:
    """The system's words for an OSError's errno ('No space left on device')."""
    return os.strerror(exc.errno) if exc.errno else first_line(exc)


class StorageFailed(OrchestratorError):
    """The sweep's storage could not be written (full, read-only, not a folder, no
    permission): the sweep stopped as on Ctrl-C, its state kept where it could be."""

    exit_code = ExitCode.STORAGE_FAILED
