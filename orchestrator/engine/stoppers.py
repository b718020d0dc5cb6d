"""Tune stoppers of our own."""

from __future__ import annotations

from ray.tune import Stopper


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
