"""SIGTERM handled like Ctrl-C: `ray job stop`, Kubernetes and Slurm send SIGTERM, and
Ray Tune snapshots its state gracefully only on SIGINT."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Received:
    """The stop signal this process received, if any (its name, e.g. 'SIGTERM')."""

    name: str | None = None


@contextlib.contextmanager
def sigterm_as_sigint() -> Iterator[Received]:
    """Within the block, SIGTERM is re-raised as SIGINT (which Tune turns into a graceful
    stop); the caller learns which signal came, for the exit code."""
    received = Received()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def on_sigterm(signum: int, frame: object) -> None:
        received.name = "SIGTERM"
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)
