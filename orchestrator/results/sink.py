"""Incremental, atomic Parquet results, written from the driver as the sweep runs.

`ResultsSink` is a Tune callback: it keeps one history row per (trial, epoch) and
one trial row per trial, and writes them when trials finish and at most every
`min_interval_s` in between, each file whole or not at all (temp file + rename). A
write costs what is new, not what the sweep has accumulated: the trials table is
rewritten (one row per trial), but the history rows reported since the last write go to
a new part in `history.parts/`; history.parquet is rewritten with everything only once
the parts hold as many rows as it does (so each row is rewritten a bounded number of
times), when there are MAX_PARTS of them, and when the sweep ends. Readers take
history.parquet plus the parts. On setup it reloads all of it, so a resumed sweep keeps
the rows it already had, and fills in epochs that Tune's trial folders recorded after
the last write (a driver killed between two writes).

On resume, `ended` names the trials the tables already record as ended: their rows
are final, and reports Tune still makes for them (a trial whose end did not reach
Tune's last snapshot) are ignored. `drop_errored` removes errored trials' rows
because Tune reruns them from scratch under new ids (`--restart-errored`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
from ray.tune import Callback

from orchestrator.results import rows, schema
from orchestrator.results.rebuild import history_rows
from orchestrator.results.tables import frames, write_history_rows, write_trial_rows
from orchestrator.storage import Location, as_location
from orchestrator.sweep_folder import history_parts, read_history, read_table

# Parts at most before history.parquet is rewritten: bounds the files a reader opens.
MAX_PARTS = 256


def _status(trial: Any) -> str:
    return str(trial.status).lower()


def _error_text(trial: Any) -> str | None:
    path = trial.error_file
    if path and Path(path).is_file():
        return Path(path).read_text().strip()[-4000:] or None
    return None


class ResultsSink(Callback):
    def __init__(self, results_dir: Location | str | Path, metric: str, mode: str,
                 time_budget_s: float | None = None,
                 min_interval_s: float = 2.0, ended: frozenset[str] = frozenset(),
                 drop_errored: bool = False, max_parts: int = MAX_PARTS):
        self.results_dir = as_location(results_dir)
        self.max_parts = max_parts  # 0: rewrite history.parquet at every write
        self.ended = frozenset(ended)
        self.drop_errored = drop_errored
        self.dropped: list[str] = []
        self.metric, self.mode = metric, mode
        self.time_budget_s = time_budget_s
        self.min_interval_s = min_interval_s
        self.history: dict[tuple, dict] = {}
        self.by_trial: dict[str, dict[int, dict]] = {}  # the same rows, per trial
        self.pending: set[tuple] = set()  # history rows not yet in any file
        self.rewrite_history = False  # rows were removed: parts cannot say so
        self.main_rows = self.parts_rows = self.parts = self.next_part = 0
        self.trials: dict[str, dict] = {}
        self.budget_stopped: list[str] = []
        self._written = 0.0
        self.write_s = 0.0  # time spent writing the tables
        self.history_write_s = 0.0  # of which the history
        self._started = time.monotonic()

    # -- state ----------------------------------------------------------
    @property
    def trials_path(self) -> Location:
        return self.results_dir / schema.TRIALS_FILE

    @property
    def history_path(self) -> Location:
        return self.results_dir / schema.HISTORY_FILE

    def setup(self, **info: Any) -> None:
        self._started = time.monotonic()
        history, trials = read_history(self.results_dir), read_table(self.trials_path)
        # parts left by an earlier driver are folded into history.parquet at the first write
        self.rewrite_history = bool(history_parts(self.results_dir))
        self.next_part = 1
        for row in [] if history is None else history.to_dict("records"):
            self.history[(row[schema.TRIAL_ID], row["epoch"])] = row
        self.main_rows = len(self.history)
        for row in [] if trials is None else trials.to_dict("records"):
            self.trials[row[schema.TRIAL_ID]] = row
        # epochs Tune recorded after our last write (the driver died in between); the
        # rows of ended trials were written when they ended and are final
        for key, row in history_rows(self.results_dir.parent).items():
            if key[0] not in self.ended and key not in self.history:
                self.history[key] = row
                self.pending.add(key)
        if self.drop_errored:
            self.dropped = sorted(t for t, row in self.trials.items()
                                  if row[schema.STATUS] == "error")
            for trial_id in self.dropped:
                del self.trials[trial_id]
            self.history = {k: v for k, v in self.history.items() if k[0] not in self.dropped}
            self.pending = {k for k in self.pending if k[0] not in self.dropped}
            self.rewrite_history = self.rewrite_history or bool(self.dropped)
        for (trial_id, epoch), row in self.history.items():
            self.by_trial.setdefault(trial_id, {})[epoch] = row

    def _add_history(self, row: dict) -> None:
        self.history[(row[schema.TRIAL_ID], row["epoch"])] = row
        self.pending.add((row[schema.TRIAL_ID], row["epoch"]))
        self.by_trial.setdefault(row[schema.TRIAL_ID], {})[row["epoch"]] = row

    def _update_trial(self, trial: Any, status: str | None = None,
                      budget_hit: bool = False) -> None:
        status = status or _status(trial)
        # Tune updates last_result before it calls the callbacks
        last = trial.last_result if "epoch" in (trial.last_result or {}) else None
        error = _error_text(trial) if status == "error" else None
        epochs = self.by_trial.get(trial.trial_id, {})
        self.trials[trial.trial_id] = rows.trial_row(
            trial.trial_id, trial.config, status, last, self.metric, error, budget_hit,
            history=[epochs[e] for e in sorted(epochs)], mode=self.mode,
        )

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < self.min_interval_s:
            return
        started = time.perf_counter()
        if self.trials:
            write_trial_rows(self.trials, self.trials_path, self.metric)
        if self.rewrite_history or (self.parts_rows + len(self.pending) >= self.main_rows
                                    or self.parts >= self.max_parts):
            self._rewrite_history()
        elif self.pending:
            self._write_part()
        self._written = now
        self.write_s += time.perf_counter() - started

    def _write_part(self) -> None:
        started = time.perf_counter()
        rows = {key: self.history[key] for key in self.pending}
        part = self.results_dir / schema.HISTORY_PARTS_DIR / f"part-{self.next_part:06d}.parquet"
        write_history_rows(rows, part)
        self.next_part, self.parts = self.next_part + 1, self.parts + 1
        self.parts_rows += len(rows)
        self.pending.clear()
        self.history_write_s += time.perf_counter() - started

    def write_whole_history(self) -> None:
        """history.parquet with every row (the end of a sweep: no parts left behind)."""
        if not (self.parts or self.pending or self.rewrite_history) and self.main_rows:
            return  # already whole
        started = time.perf_counter()
        self._rewrite_history()
        self.write_s += time.perf_counter() - started

    def _rewrite_history(self) -> None:
        """history.parquet with every row, then the parts it replaces are removed (a
        reader in between sees each row twice and keeps one)."""
        if not (self.history or self.trials or self.rewrite_history):
            return
        started = time.perf_counter()
        write_history_rows(self.history, self.history_path)
        (self.results_dir / schema.HISTORY_PARTS_DIR).delete()
        self.main_rows, self.parts_rows, self.parts = len(self.history), 0, 0
        self.pending.clear()
        self.rewrite_history = False
        self.history_write_s += time.perf_counter() - started

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return frames(self.trials, self.history, self.metric, self.mode)

    # -- Tune callback hooks ------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id not in self.ended:
            self._update_trial(trial, "running")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if "epoch" not in result or trial.trial_id in self.ended:
            return
        self._add_history(rows.history_row(trial.trial_id, result))
        self._update_trial(trial, "running")
        self.flush()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id not in self.ended:
            self._update_trial(trial, "terminated")
        self.flush(force=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id not in self.ended:
            self._update_trial(trial, "error")
        self.flush(force=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        # Trials Tune ended normally were recorded by on_trial_complete/on_trial_error.
        # The rest were cut when the loop stopped: by the time budget, or by an
        # interrupt (Ctrl-C), after which Tune's saved state resumes them.
        budget_hit = bool(
            self.time_budget_s and time.monotonic() - self._started >= self.time_budget_s
        )
        for trial in trials:
            if self.trials.get(trial.trial_id, {}).get(schema.STATUS) in ("terminated", "error"):
                continue
            started = "epoch" in (trial.last_result or {})
            if budget_hit:
                self.budget_stopped.append(trial.trial_id)
                status = "terminated" if started else "pending"
            else:
                status = "paused" if started else "pending"
            self._update_trial(trial, status, budget_hit=budget_hit)
        self.flush(force=True)
        self.write_whole_history()
