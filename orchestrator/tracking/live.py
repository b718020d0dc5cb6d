"""Tracking while the sweep runs: a Tune callback placed after the results sink, so that
what it sends is exactly the rows the sink holds (the diagnosis included), at most every
`min_interval_s` and at each trial's end.

The sending happens on a thread of its own: a request to a tracking server takes tens of
milliseconds (bench/tracking.py), and the Tune loop that schedules the trials must not
wait for it. The loop only copies the changed trials' rows into a queue."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from typing import Any

from ray.tune import Callback

from orchestrator.errors import warn
from orchestrator.results import schema
from orchestrator.results.storage import Location
from orchestrator.spec.tracking import Tracking
from orchestrator.tracking.mirror import present

_STOP = None  # the queue's last item
# how long the driver waits, after the sweep, for the sender to finish; what is left is
# in the tables, and `sweep track` sends it
SENDER_WAIT_S = 120


class TrackingCallback(Callback):
    def __init__(self, tracking: Tracking, folder: Location, sink: Any, resend_hint: str,
                 min_interval_s: float = 2.0):
        self.tracking, self.folder, self.sink = tracking, folder, sink
        self.resend_hint = resend_hint
        self.min_interval_s = min_interval_s
        self.mirror = None
        self.dirty: set[str] = set()
        self._synced = 0.0
        self._finished = False
        self._queue: queue.Queue | None = None
        self._sender: threading.Thread | None = None
        self._environment: contextlib.ExitStack | None = None

    def __getstate__(self) -> dict:
        # Tune pickles the callbacks with the experiment; a driver that resumes it makes
        # its own, so the connections, the thread and the console stay out of the pickle
        return {**self.__dict__, "mirror": None, "sink": None,
                "_queue": None, "_sender": None, "_environment": None}

    def setup(self, **info: Any) -> None:
        from orchestrator.results.folder import read_sweep_json
        from orchestrator.tracking.mirror import Mirror
        from orchestrator.tracking.setup import client_environment, identity, trackers_for

        self._environment = contextlib.ExitStack()  # on this (the main) thread, once
        self._environment.enter_context(client_environment(self.tracking, self.folder))
        self.mirror = Mirror(trackers_for(self.tracking, self.folder), self.resend_hint)
        sweep = self._sweep = identity(read_sweep_json(self.folder), self.folder)
        self._queue = queue.Queue()
        self._sender = threading.Thread(target=self._send, args=(sweep,),
                                        name="sweep-tracking", daemon=True)
        self._sender.start()
        self.dirty = set(self.sink.trials)  # a resumed sweep's earlier rows, if missing

    def _send(self, sweep) -> None:
        """The sender thread: open the trackers, then send each snapshot (those queued
        meanwhile merged into one) until the last."""
        self.mirror.open(sweep)
        while True:
            item = self._queue.get()
            trials, by_trial, last = {}, {}, item is _STOP
            while item is not _STOP:
                trials.update(item[0])
                by_trial.update(item[1])
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            else:
                last = True
            if trials:
                self.mirror.sync(trials, by_trial)
            if last:
                return

    def _sync(self, force: bool = False) -> None:
        if self._queue is None or not self.dirty:
            return
        now = time.monotonic()
        if not force and now - self._synced < self.min_interval_s:
            return
        dirty, self.dirty = self.dirty, set()
        # copies: the sink goes on changing its dicts on this thread
        self._queue.put(({t: dict(self.sink.trials[t]) for t in dirty if t in self.sink.trials},
                         {t: dict(self.sink.by_trial.get(t, {})) for t in dirty}))
        self._synced = now

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self.dirty.add(trial.trial_id)
        self._sync()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        # rows that came in since the last sync leave within min_interval_s, even when no
        # other trial reports in the meantime
        self._sync()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.dirty.add(trial.trial_id)
        self._sync(force=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.dirty.add(trial.trial_id)
        self._sync(force=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.finish()

    def finish(self) -> None:
        """The last rows, the trials' ends and the sweep's; waits for the sender (the
        driver calls it after the Tuner returns: Tune may end without calling
        on_experiment_end)."""
        if self._queue is None or self._finished:
            return
        self._finished = True
        self.dirty = set(self.sink.trials)
        self._sync(force=True)
        self._queue.put(_STOP)
        self._sender.join(SENDER_WAIT_S)
        try:
            if self._sender.is_alive():  # a slow server: the rest stays in the tables
                warn(f"warning: tracking: still sending after {SENDER_WAIT_S} s; "
                     f"the sweep is done and its tables hold everything: "
                     f"`{self.resend_hint}` sends the rest")
                return
            trials = list(self.sink.trials.values())
            self.mirror.finish(trials, self._advice(), interrupted=any(
                not present(t.get(schema.STOP_REASON)) for t in trials))
        finally:
            self._environment.close()

    def _advice(self) -> list[str]:
        from orchestrator.analysis.advice import advise

        trials, _ = self.sink.frames()
        return advise(trials, self._sweep.spec)

    @property
    def lost(self) -> list[str]:
        return self.mirror.lost if self.mirror else []
