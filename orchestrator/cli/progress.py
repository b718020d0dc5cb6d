"""What the user sees: a live progress line while the sweep runs, a leaderboard after.

`ProgressView` is a Tune callback in the driver. On a terminal it redraws one
compact panel (rich Live); elsewhere (CI, pipes) it prints a line when a trial
ends and at most every `line_every_s` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pandas as pd
from ray.tune import Callback
from rich.console import Console
from rich.live import Live
from rich.text import Text

from orchestrator.analysis.leaderboard import fmt as _fmt
from orchestrator.results import schema


class ProgressView(Callback):
    def __init__(self, console: Console, total: int, metric: str, mode: str,
                 line_every_s: float = 10.0, ended: Mapping[str, str] | None = None):
        self.console, self.total, self.metric, self.mode = console, total, metric, mode
        self.line_every_s = line_every_s
        self.counts = {"running": 0, "finished": 0, "stopped early": 0, "errored": 0}
        self.best: float | None = None
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

    def setup(self, **info: Any) -> None:
        self._started = time.monotonic()
        if self.console.is_terminal:
            self._live = Live(self.render(), console=self.console, refresh_per_second=2,
                              transient=True)
            self._live.start()

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def _tally(self, trials: list) -> None:
        counts = dict.fromkeys(self.counts, 0)
        for trial in trials:
            status = str(trial.status)
            last = trial.last_result or {}
            if trial.trial_id in self._earlier:
                completed = self._earlier[trial.trial_id] == "completed"
                counts["finished" if completed else "stopped early"] += 1
            elif status == "RUNNING":
                counts["running"] += 1
            elif status == "ERROR":
                counts["errored"] += 1
            elif status == "TERMINATED" and trial.trial_id in self._ended:
                completed = last.get("stop_reason") == "completed"
                counts["finished" if completed else "stopped early"] += 1
            value = last.get(schema.best_column(self.metric))
            if isinstance(value, int | float) and not pd.isna(value) and self._better(value):
                self.best = value
        self.counts = counts

    def render(self) -> Text:
        elapsed = time.monotonic() - self._started
        parts = [f"{self.counts[k]} {k}" for k in self.counts]
        return Text(
            f"trials {sum(self.counts.values()) - self.counts['running']}/{self.total} done · "
            + " · ".join(parts)
            + f" · best {self.metric} {_fmt(self.best)} · {elapsed:.0f}s"
        )

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
