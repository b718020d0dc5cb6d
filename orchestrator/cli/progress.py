"""What the user sees: a live progress line while the sweep runs, a leaderboard after.

`ProgressView` is a Tune callback in the driver. On a terminal it redraws one
compact panel (rich Live); elsewhere (CI, pipes) it prints a line when a trial
ends and at most every `line_every_s` seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from ray.tune import Callback
from rich.console import Console
from rich.live import Live
from rich.text import Text

from orchestrator.analysis.leaderboard import fmt as _fmt
from orchestrator.results import schema
from orchestrator.states import StopReason

# the cluster's nodes are counted again this often (an autoscaler adds and removes them)
RECOUNT_S = 30.0


class ProgressView(Callback):
    def __init__(self, console: Console, total: int, metric: str, mode: str,
                 line_every_s: float = 10.0, ended: Mapping[str, str] | None = None,
                 resources: Any = None, max_concurrent: int | None = None,
                 best: float | None = None):
        self.console, self.total, self.metric, self.mode = console, total, metric, mode
        self.line_every_s = line_every_s
        # a trial's CPUs and GPUs: how many run at once on the cluster's nodes
        self.resources, self.max_concurrent = resources, max_concurrent
        self.at_once: int | None = None
        self._counted = float("-inf")
        self.counts = {"running": 0, "finished": 0, "stopped early": 0, "errored": 0}
        self.best: float | None = None
        self._seen(best)  # the sweep's best before this segment (resume, extend)
        self._started = time.monotonic()
        self._printed = self._tallied = 0.0
        self._live: Live | None = None
        # trials that ended in earlier segments, and their stop reasons: counted as the
        # tables record them, whatever Tune's restored state says of them
        self._earlier: dict[str, str] = dict(ended or {})
        # trials Tune ended (not cut by an interrupt), earlier segments' included
        self._ended: set[str] = set(self._earlier)

    # Tune pickles its callbacks with the experiment (for restore): the console
    # and the live display are rebuilt rather than pickled.
    def __getstate__(self) -> dict:
        return {**self.__dict__, "console": None, "_live": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.console = Console(stderr=True)

    def _count(self) -> None:
        """How many trials fit on the cluster's nodes at once (with max_concurrent)."""
        if self.resources is None or time.monotonic() - self._counted < RECOUNT_S:
            return
        from orchestrator.cli.capacity import cluster_nodes, trials_at_once

        self._counted = time.monotonic()
        fit = trials_at_once(cluster_nodes(), self.resources)
        self.at_once = min(fit, self.max_concurrent or fit)

    def setup(self, **info: Any) -> None:
        self._started = time.monotonic()
        self._count()
        if self.console.is_terminal:
            self._live = Live(self.render(), console=self.console, refresh_per_second=2,
                              transient=True)
            self._live.start()

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def _seen(self, value: Any) -> None:
        """A value of the objective, counted when it is a finite number and better."""
        if isinstance(value, int | float) and not isinstance(value, bool) and \
                math.isfinite(value) and self._better(value):
            self.best = value

    def _tally(self, trials: list) -> None:
        counts = dict.fromkeys(self.counts, 0)
        # trials that ended in earlier segments, whether or not Tune's restored state
        # holds them (an extension's experiment holds only its own)
        for reason in self._earlier.values():
            counts["finished" if reason == StopReason.COMPLETED else
                   "errored" if reason == StopReason.ERROR else "stopped early"] += 1
        for trial in trials:
            last = trial.last_result or {}
            if trial.trial_id not in self._earlier:  # those are counted above
                bucket = self._bucket(trial, last)
                if bucket:
                    counts[bucket] += 1
            # the shared trainable reports its best so far (a trial restored on resume
            # brings it); a user's loop only the metric, seen epoch by epoch below
            self._seen(last.get(schema.best_column(self.metric)))
        self.counts = counts
        self._count()

    def _bucket(self, trial: Any, last: dict) -> str | None:
        """Which count a trial of this segment is in, if any (pending: none)."""
        status = str(trial.status)
        if status == "RUNNING":
            return "running"
        if status == "ERROR":
            return "errored"
        if status == "TERMINATED" and trial.trial_id in self._ended:
            completed = last.get("stop_reason") == StopReason.COMPLETED
            return "finished" if completed else "stopped early"
        return None

    def render(self) -> Text:
        from orchestrator.cli.capacity import per_gpu

        elapsed = time.monotonic() - self._started
        parts = [f"{self.counts[k]} {k}" for k in self.counts]
        packing = ""
        if self.at_once is not None:
            gpu = self.resources.gpu
            shared = f", {per_gpu(gpu)} per GPU" if 0 < gpu < 1 else ""
            packing = f" · {self.at_once} at once{shared}"
        return Text(
            f"trials {sum(self.counts.values()) - self.counts['running']}/{self.total} done · "
            + " · ".join(parts) + packing
            + f" · best {self.metric} {_fmt(self.best)} · {elapsed:.0f}s"
        )

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        # every epoch's objective: the tally, twice a second, sees only each trial's last
        self._seen(result.get(self.metric))

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        # Tune steps many times a second: recount at most twice a second
        now = time.monotonic()
        if now - self._tallied < 0.5:
            return
        self._tallied = now
        self._tally(trials)
        if self._live:
            self._live.update(self.render())
        elif now - self._printed >= self.line_every_s:
            self._printed = now
            self.console.print(self.render())

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended.add(trial.trial_id)
        self._tally(trials)
        if not self._live:
            self._printed = time.monotonic()
            self.console.print(self.render())

    on_trial_error = on_trial_complete

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._tally(trials)
        if self._live:
            self._live.stop()
        self.console.print(self.render())
