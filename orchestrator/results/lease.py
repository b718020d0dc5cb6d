"""One writer per sweep: a lease taken before anything of the sweep is written and held
for the driver's life.

Two `sweep run` (or `resume`) of one name into one storage would otherwise both write
the same tables, and one run's trials would be lost without a word. On a folder (local
or an NFS-like mount) the lease is an exclusive `flock` on `<storage>/.<name>.lease`: the
kernel releases it when its holder ends, however it ends (a SIGKILL included), so a
lease is never broken while its holder lives and never outlives it. The file says who
holds it, for the refusal's message. On S3 (or an S3-compatible store) the lease is an
object written only if absent and renewed by its holder (`object_lease.py`). Other
object stores (gs://, ...) take no lease (docs/resume.md says so).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import platform
import time
from collections.abc import Iterator

from orchestrator.errors import SweepBusy
from orchestrator.results.object_lease import ObjectLease, is_s3, object_lease
from orchestrator.results.storage import Location


def lease_path(folder: Location):
    """Where the lease of the sweep in `folder` lives: beside the folder, not in it (a
    fresh `run --overwrite` deletes the folder)."""
    return folder.local.parent / f".{folder.local.name}.lease"


@contextlib.contextmanager
def sweep_lease(folder: Location, command: str) -> Iterator[ObjectLease | None]:
    """Hold the lease of the sweep in `folder` for the body of the `with`; a lease held
    by another driver is one line (exit 2) naming who holds it and since when. A lease
    of a gone holder taken over is a SweepWarning (object stores).
    Yields the object store's lease, whose `lost` says when another driver took it over
    (a flock is never taken from a live holder: None)."""
    if folder.local is None:
        if is_s3(folder):
            with object_lease(folder, command) as lease:
                yield lease
        else:
            yield  # no lease on other object stores (see the module's docstring)
        return
    path = lease_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the lock is held on a read-only descriptor where the filesystem allows it: a file
    # open for writing for the driver's life would keep its mount from being made
    # read-only. NFS emulates flock with POSIX locks, whose exclusive kind needs a
    # descriptor open for writing (EBADF otherwise).
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno != errno.EBADF:
                    raise
                os.close(fd)
                fd = os.open(path, os.O_RDWR)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _held_by(path, folder.local.name) from None
        holder = {"command": command, "pid": os.getpid(), "host": platform.node(),
                  "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        path.write_text(json.dumps(holder))
        try:
            yield None
        finally:
            with contextlib.suppress(OSError):  # a storage that takes no writes now
                os.truncate(path, 0)  # released: nobody holds it
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_held(folder: Location) -> bool | None:
    """Does a live driver hold the sweep's lease? None on a store with no lease."""
    if folder.local is None:
        if not is_s3(folder):
            return None
        return ObjectLease(folder).live_holder() is not None
    path = lease_path(folder)
    if not path.is_file():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def refuse_if_held(folder: Location) -> None:
    """Before Ray starts: the same refusal as `sweep_lease`'s when a live driver holds
    the lease now (writing nothing; the lease itself is taken once Ray runs)."""
    if folder.local is None:
        if is_s3(folder):
            lease = ObjectLease(folder)
            if held := lease.live_holder():
                raise lease.refusal(held)
        return
    if is_held(folder):
        raise _held_by(lease_path(folder), folder.local.name)


def _held_by(path, name: str) -> SweepBusy:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    return SweepBusy.held(name, holder, path)
