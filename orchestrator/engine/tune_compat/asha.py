"""Rebuild ASHA's rungs on resume: Ray Tune's private bracket state
(`AsyncHyperBandScheduler._brackets`, each bracket's `_rungs`: [(milestone, {trial_id:
signed metric})])."""

from __future__ import annotations

from typing import Any


def replay_history(scheduler: Any, history: list[tuple[str, int, float]], mode: str) -> bool:
    """Give a restored scheduler back what it had learnt from `history`
    ((trial_id, epoch, metric) rows). Returns whether it could.

    Tune does not save its scheduler with the experiment state: a restored sweep gets
    the scheduler pickled when the sweep began, with no results in it. ASHA with one
    bracket records a trial's metric at each rung's epoch, whatever the order, so the
    rungs are rebuilt exactly from the history; its remaining trials are then judged
    against every trial of the sweep, not just the ones that run after the resume.
    """
    from ray.tune.schedulers import AsyncHyperBandScheduler

    if not isinstance(scheduler, AsyncHyperBandScheduler) or len(scheduler._brackets) != 1:
        return False
    sign = 1.0 if mode == "max" else -1.0
    at = {(trial_id, int(epoch)): value for trial_id, epoch, value in history}
    for milestone, recorded in scheduler._brackets[0]._rungs:
        for (trial_id, epoch), value in at.items():
            if epoch == milestone and value == value:  # NaN never reaches a rung
                recorded.setdefault(trial_id, sign * value)
    return True
