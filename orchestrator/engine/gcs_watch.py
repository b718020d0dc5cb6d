"""End a sweep within seconds when Ray's GCS is lost, instead of Ray's 60 s wait.

When the GCS (the head of a cluster, or the embedded Ray's `gcs_server`) dies, Ray's
client in the driver retries for 60 s and then ends the process from C++ (exit 1,
"Failed to connect to GCS within 60 seconds"): no Python code runs after it, so the
sweep's sweep.json stayed `running`. Worse, Tune's graceful stop itself blocks on the
GCS (freeing placement groups), so Ctrl-C could not help either.

`GcsWatch` checks every second that the GCS still accepts connections. After
`LOST_AFTER_S` without one it stops Tune as Ctrl-C does (Tune saves its experiment
state first, which needs no GCS), gives the driver `GRACE_S` to record the end itself,
records it otherwise (`interrupted`, with the reason), says so in one line and ends the
process with exit 3: the process could not live past Ray's 60 s anyway, and everything
`sweep resume` needs is on disk (Tune's state, the tables, every trial's checkpoints).
An embedded Ray's processes are ended with it: kernel fate-sharing ends the raylet, but
its agents, left waiting for the dead GCS, would linger another minute.

A cluster whose GCS restarts (Ray's GCS fault tolerance) for longer than LOST_AFTER_S
ends the sweep the same way; `sweep resume` continues it.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.errors import ExitCode, warn

LOST_AFTER_S = 3.0
GRACE_S = 15.0
EVERY_S = 1.0


def answers(address: str, timeout_s: float = 1.0) -> bool:
    """Whether something accepts a TCP connection at HOST:PORT."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
        return True
    except (OSError, ValueError):
        return False


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (children, theirs, ...), read from /proc (Linux, where
    Ray's kernel fate-sharing lives too; elsewhere none)."""
    parents: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    # pid (comm) state ppid ...: comm may hold spaces and parentheses
                    parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


class GcsWatch:
    """A daemon thread that watches the GCS at `address` for the body of a `with`.

    Args:
        address: the GCS, HOST:PORT.
        record: records the sweep's end as interrupted for `reason` unless the driver
            already did (it must be safe to call from this thread, and more than once).
        resume: the command that continues the sweep.
        own_processes: this driver started the Ray it uses (its descendants are Ray's).
    """

    def __init__(self, address: str, record: Callable[[str], None], resume: str,
                 own_processes: bool = False):
        self.address, self.record, self.resume = address, record, resume
        self.own_processes = own_processes
        self.lost: str | None = None
        self._done = threading.Event()  # the sweep ended (or the block was left)
        self._recorded = threading.Event()  # the driver recorded the end after a loss
        self._ending = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="gcs-watch", daemon=True)

    def __enter__(self) -> GcsWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def _watch(self) -> None:
        failing_since = None
        while not self._done.wait(EVERY_S):
            if answers(self.address):
                failing_since = None
                continue
            failing_since = failing_since or time.monotonic()
            if time.monotonic() - failing_since >= LOST_AFTER_S:
                break
        else:
            return
        self.lost = (f"Ray's GCS at {self.address} stopped answering (its head node or "
                     "gcs_server died)")
        # Tune stops as on Ctrl-C: it saves its experiment state, then its clean-up
        # blocks on the GCS, so the end is recorded here if the driver cannot
        _thread.interrupt_main(signal.SIGINT)
        self._recorded.wait(GRACE_S)
        self.end()

    def recorded(self) -> None:
        """The driver recorded the sweep's end: after a loss, the process ends now (its
        Ray connection would hang in `ray.shutdown` and end it 60 s later anyway)."""
        if self.lost:
            self._recorded.set()
            self.end()

    def end(self) -> None:
        """Record the end if nobody did, say why in one line and end the process."""
        with self._ending:  # one of the two threads gets here; the other waits for exit
            try:
                self.record(self.lost or "Ray was lost")
            finally:
                with contextlib.suppress(Exception):  # a warnings filter "error": exit all the same
                    warn(f"error: {self.lost}; the sweep stopped as on Ctrl-C: continue it "
                         f"with `{self.resume}` once Ray runs again")
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(Exception):
                        stream.flush()
                if self.own_processes:
                    for pid in descendants(os.getpid()):
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)
                os._exit(ExitCode.RAY_UNAVAILABLE)  # Ray failed, not the input
