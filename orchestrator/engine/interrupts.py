"""Stop signals: SIGTERM handled like Ctrl-C, once; the end of a sweep recorded whole.

`ray job stop`, Kubernetes, Slurm, systemd and `timeout` send SIGTERM, and Ray Tune
snapshots its state gracefully only on SIGINT. A second Ctrl-C makes Tune stop at once
(Python's KeyboardInterrupt, wherever the driver is): the driver still records the end.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from orchestrator.errors import warn


@dataclass
class Received:
    """The stop signal this process received, if any (its name, e.g. 'SIGTERM'), and
    whether a second Ctrl-C made Tune stop at once (without its last snapshot)."""

    name: str | None = None
    at_once: bool = False


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def sigterm_as_sigint(received: Received | None = None) -> Iterator[Received]:
    """Within the block, the first SIGTERM is re-raised as SIGINT (which Tune turns into
    a graceful stop); later ones are ignored: `timeout` sends SIGTERM to the driver and
    then to its whole process group, and a job system that runs out of patience follows
    with SIGKILL anyway. The caller learns which signal came, for the exit code.

    `ray.init` installs Ray's own SIGTERM handler (it aborts the process): enter this
    again, with the same `received`, once Ray is up."""
    received = received or Received()
    if not _main_thread():
        yield received
        return

    def on_sigterm(signum: int, frame: object) -> None:
        if received.name is not None:
            return  # a graceful stop is under way
        received.name = "SIGTERM"
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Ctrl-C is ignored within the block (the few writes that record how a sweep
    ended: a KeyboardInterrupt between them would leave sweep.json saying `running`).
    SIGTERM is already turned into SIGINT by `sigterm_as_sigint`."""
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _TuneStopLines(logging.Filter):
    """Tune's own lines about a stop speak to a user of Tune's Python API: "Stop signal
    received ... Press CTRL+C (or send SIGINT/SIGKILL/SIGTERM) to skip" (a repeated
    SIGTERM is ignored here) and "Resume experiment with: Tuner.restore(...)" (the way
    back is `sweep resume`, which the CLI names at the end). The first becomes our line;
    the second is dropped, and so is "Trials did not complete: [...]" after a stop."""

    def __init__(self, say: Callable[[], None]):
        super().__init__()
        self.say = say
        self.stopping = False
        # the handler Tune restores for a second Ctrl-C (Python's KeyboardInterrupt)
        self.sigint = signal.getsignal(signal.SIGINT) if _main_thread() else None

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Stop signal received"):
            self.stopping = True
            # Tune logs this from its SIGINT handler and only then restores the handler
            # a second Ctrl-C needs: restored first, so that "Ctrl-C again stops at once"
            # holds from the moment it is printed (a Ctrl-C during a slow write of that
            # line, wandb's console capture for one, would otherwise be Tune's again)
            if self.sigint is not None and _main_thread():
                signal.signal(signal.SIGINT, self.sigint)
            self.say()
            return False
        if self.stopping and message.startswith("Trials did not complete"):
            return False  # after a stop, of course not: the CLI says how many and how on
        return not message.startswith(("Experiment has been interrupted",
                                       "Training has been interrupted"))


@contextlib.contextmanager
def stop_lines(resume: str, unless: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """Within the block, Tune's lines about a stop are ours: one line (a SweepWarning)
    when the stop begins, naming `resume` (the command that continues the sweep), unless
    `unless()` says another line tells of the stop."""
    logger = logging.getLogger("ray.tune.tune")
    lines = _TuneStopLines(lambda: None if unless() else warn(
        f"stopping: saving the sweep's state for `{resume}` (Ctrl-C again stops at once)"))
    logger.addFilter(lines)
    try:
        yield
    finally:
        logger.removeFilter(lines)
