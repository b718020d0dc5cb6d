"""Tune stoppers of our own, and the callback that stops the retries of a trial whose
data or code is at fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune import Callback, Stopper


class StopEnded(Stopper):
    """Stops trials that already ended at their first report.

    On resume, Tune's last experiment snapshot can predate a trial's end (it was stopped
    by the scheduler or finished just before the driver died), so Tune would run it on;
    the result tables, written when the trial ended, know better.
    """

    def __init__(self, trial_ids: frozenset[str]):
        self.trial_ids = frozenset(trial_ids)

    def __call__(self, trial_id: str, result: dict) -> bool:
        return trial_id in self.trial_ids

    def stop_all(self) -> bool:
        return False


class NoRetryOfDataErrors(Callback):
    """A trial that failed with an error of its data or code before its first report
    (`trainable.not_retried.NotRetried`) is not retried: Tune has already queued it
    again when it tells its callbacks, so its retries end at the next failure, which
    that retry raises at once without running the user's code."""

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        path = trial.error_file
        if path and Path(path).is_file() and "NotRetried" in Path(path).read_text():
            trial.max_failures = 0


class SearcherHearsOfEnds(Callback):
    """Tells the searcher, at a resumed sweep's first step, of trials that ended after
    Tune's last snapshot and were marked ended in it (`tune_compat.mark_ended`): its
    state, saved before they ended, still counts them running, so a searcher with a
    concurrency limit would wait for them for good, and a model-based one (Optuna)
    would never learn their results. `results` maps each to its last reported row."""

    def __init__(self, search_alg: Any, results: dict[str, dict]):
        self.search_alg, self.results = search_alg, results

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        # the first step comes after Tune restored the searcher's state, before it asks
        # the searcher for new trials
        results, self.results = self.results, {}
        for trial_id, result in results.items():
            self.search_alg.on_trial_complete(trial_id, result=result)

    def __getstate__(self) -> dict:  # Tune pickles its callbacks: the searcher is its own
        return {"search_alg": None, "results": {}}
