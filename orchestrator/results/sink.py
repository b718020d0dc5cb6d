"""Incremental, atomic Parquet results, written from the driver as the sweep runs.

`ResultsSink` is a Tune callback: it keeps one history row per (trial, epoch) and
one trial row per trial, and writes them when trials finish and at most every
`min_interval_s` in between, each file whole or not at all (temp file + rename). A
write costs what changed, not what the sweep has accumulated: each table is a
`PartedTable` (the rows changed since the last write go to a new part, folded into the
main file now and then and when the sweep ends). Readers take each file plus its parts.
On setup it reloads all of it, so a resumed sweep keeps the rows it already had, and
fills in epochs that Tune's trial folders recorded after the last write (a driver
killed between two writes).

On resume, `ended` names the trials the tables already record as ended: their rows
are final, and reports Tune still makes for them (a trial whose end did not reach
Tune's last snapshot) are ignored. `drop_errored` removes errored trials' rows
because Tune reruns them from scratch under new ids (`--restart-errored`). `lost`
names trials Tune's restored state does not hold (a driver killed after they started,
before Tune's next snapshot): Tune never continues them, and its searcher, restored
without them, draws their places again, so their rows and their folders' epochs go.

A storage that refuses a write (full, read-only, not a folder) does not raise out of
a hook (an exception there would end Tune's loop without its last snapshot): the sink
keeps its rows, records the first such error in `storage_error`, tries again at the
next write, and the driver stops the sweep as on Ctrl-C. Each file is still whole or
absent, so the tables on disk stay consistent, only behind.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from ray.tune import Callback

from orchestrator.errors import storage_problem
from orchestrator.results import rows, schema
from orchestrator.results.folder import read_history, read_trials
from orchestrator.results.parted import MAX_PARTS, PartedTable
from orchestrator.results.rebuild import history_rows
from orchestrator.results.storage import Location, as_location
from orchestrator.results.tables import frames, write_history_rows, write_trial_rows
from orchestrator.states import TrialStatus


def _status(trial: Any) -> str:
    return str(trial.status).lower()


def _error_text(trial: Any) -> str | None:
    path = trial.error_file
    if path and Path(path).is_file():
        return rows.error_text(Path(path).read_text())
    return None


class ResultsSink(Callback):
    def __init__(self, results_dir: Location | str | Path, metric: str, mode: str,
                 time_budget_s: float | None = None,
                 min_interval_s: float = 2.0, ended: frozenset[str] = frozenset(),
                 drop_errored: bool = False, max_parts: int = MAX_PARTS,
                 lost: frozenset[str] = frozenset()):
        self.results_dir = results = as_location(results_dir)
        self.ended = frozenset(ended)
        self.lost = frozenset(lost)
        self.drop_errored = drop_errored
        self.dropped: list[str] = []
        self.metric, self.mode = metric, mode
        self.time_budget_s = time_budget_s
        self.min_interval_s = min_interval_s
        # set when the sweep's lease was taken over: the tables are another driver's now
        self.stopped_writing = False
        self.trials_table = PartedTable(
            results / schema.TRIALS_FILE, results / schema.TRIALS_PARTS_DIR,
            lambda rows, path: write_trial_rows(rows, path, metric), max_parts)
        self.history_table = PartedTable(
            results / schema.HISTORY_FILE, results / schema.HISTORY_PARTS_DIR,
            write_history_rows, max_parts)
        self.by_trial: dict[str, dict[int, dict]] = {}  # the history rows, per trial
        self.budget_stopped: list[str] = []
        self._written = 0.0
        self.write_s = 0.0  # time spent writing the tables
        self.storage_error: OSError | None = None  # the first write the storage refused
        self._started = time.monotonic()

    # -- state ----------------------------------------------------------
    @property
    def trials(self) -> dict[str, dict]:
        return self.trials_table.rows

    @property
    def history(self) -> dict[tuple, dict]:
        return self.history_table.rows

    @property
    def history_write_s(self) -> float:
        return self.history_table.write_s

    def setup(self, **info: Any) -> None:
        self._started = time.monotonic()
        history, trials = read_history(self.results_dir), read_trials(self.results_dir)
        self.history_table.load({} if history is None else {
            (row[schema.TRIAL_ID], row["epoch"]): row for row in history.to_dict("records")})
        self.trials_table.load({} if trials is None else {
            row[schema.TRIAL_ID]: row for row in trials.to_dict("records")})
        # epochs Tune recorded after our last write (the driver died in between). An
        # ended trial's rows are final up to its last epoch: a driver killed between the
        # trials table's write and the history's left its end written and its last rows
        # not; a later report (a restore's first epoch, stopped at once) is not its own
        for key, row in history_rows(self.results_dir.parent).items():
            if key in self.history or key[0] in self.lost:
                continue
            if key[0] in self.ended:
                last = (self.trials.get(key[0]) or {}).get("epochs")
                if last is None or last != last or key[1] > last:
                    continue
            self.history_table.put(key, row)
        if self.lost:
            self.trials_table.drop(sorted(self.lost & set(self.trials)))
            self.history_table.drop([k for k in self.history if k[0] in self.lost])
        if self.drop_errored:
            self.dropped = sorted(t for t, row in self.trials.items()
                                  if row[schema.STATUS] == TrialStatus.ERROR)
            self.trials_table.drop(self.dropped)
            self.history_table.drop(k for k in self.history if k[0] in self.dropped)
        for (trial_id, epoch), row in self.history.items():
            self.by_trial.setdefault(trial_id, {})[epoch] = row

    def _add_history(self, row: dict) -> None:
        self.history_table.put((row[schema.TRIAL_ID], row["epoch"]), row)
        self.by_trial.setdefault(row[schema.TRIAL_ID], {})[row["epoch"]] = row

    def _update_trial(self, trial: Any, status: str | None = None,
                      budget_hit: bool = False) -> None:
        status = status or _status(trial)
        # Tune updates last_result before it calls the callbacks
        last = trial.last_result if "epoch" in (trial.last_result or {}) else None
        error = _error_text(trial) if status == TrialStatus.ERROR else None
        epochs = self.by_trial.get(trial.trial_id, {})
        self.trials_table.put(trial.trial_id, rows.trial_row(
            trial.trial_id, trial.config, status, last, self.metric, error, budget_hit,
            history=[epochs[e] for e in sorted(epochs)], mode=self.mode,
        ))

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.stopped_writing or (not force and now - self._written < self.min_interval_s):
            return
        started = time.perf_counter()
        with self._refused_writes_kept():
            self.trials_table.write()
            self.history_table.write()
        self._written = now
        self.write_s += time.perf_counter() - started

    def write_whole(self) -> None:
        """Each table one file with every row (the end of a sweep: no parts left)."""
        if self.stopped_writing:
            return
        started = time.perf_counter()
        with self._refused_writes_kept():
            self.trials_table.finish()
            self.history_table.finish(empty_too=bool(self.trials))
        self.write_s += time.perf_counter() - started

    @contextlib.contextmanager
    def _refused_writes_kept(self) -> Iterator[None]:
        """A write the storage refuses is recorded, not raised (the module's docstring);
        the rows stay pending for the next write."""
        try:
            yield
        except OSError as exc:
            problem = storage_problem(exc)
            if problem is None:
                raise
            self.storage_error = self.storage_error or problem

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return frames(self.trials, self.history, self.metric, self.mode)

    # -- Tune callback hooks ------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id not in self.ended:
            self._update_trial(trial, TrialStatus.RUNNING)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if "epoch" not in result or trial.trial_id in self.ended:
            return
        self._add_history(rows.history_row(trial.trial_id, result))
        self._update_trial(trial, TrialStatus.RUNNING)
        self.flush()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id not in self.ended:
            self._update_trial(trial, TrialStatus.TERMINATED)
        self.flush(force=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id not in self.ended:
            self._update_trial(trial, TrialStatus.ERROR)
        self.flush(force=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        # Trials Tune ended normally were recorded by on_trial_complete/on_trial_error.
        # The rest were cut when the loop stopped: by the time budget, or by an
        # interrupt (Ctrl-C), after which Tune's saved state resumes them.
        budget_hit = bool(
            self.time_budget_s and time.monotonic() - self._started >= self.time_budget_s
        )
        for trial in trials:
            if self.trials.get(trial.trial_id, {}).get(schema.STATUS) in (
                    TrialStatus.TERMINATED, TrialStatus.ERROR):
                continue
            started = "epoch" in (trial.last_result or {})
            if budget_hit:
                self.budget_stopped.append(trial.trial_id)
                status = TrialStatus.TERMINATED if started else TrialStatus.PENDING
            else:
                status = TrialStatus.PAUSED if started else TrialStatus.PENDING
            self._update_trial(trial, status, budget_hit=budget_hit)
        self.flush(force=True)
        self.write_whole()
