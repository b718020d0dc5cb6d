"""Synchronous HyperBand that never leaves a bracket's trials paused for good.

Ray Tune's `HyperBandScheduler` (2.52-2.60) pauses each trial that reaches its bracket's
milestone until every live trial of the bracket has reached it too; the last trial to
arrive settles the rung (halves it, or at max_t stops the paused ones). A trial that
*ends* instead of arriving (early stopping, a diverged loss, a planned run shorter than
the milestone, an error) only settles the rung when it is the bracket's first rung and the
bracket is not at its last one: `on_trial_remove` skips a bracket already halved once
(`is_being_processed` is never reset) or one whose remaining trials all wait at max_t
(`finished()`). The paused trials then wait for a rung nobody settles, and the sweep
never ends (seen in this project's CI: two trials PAUSED at max_t, the Tune loop spinning).

This subclass settles the rung on every removal that leaves all live trials at it. It
also mends two more ways to the same end: a trial still saving its pause when the rung
at max_t is settled (Ray stops PAUSED trials only), and a restored sweep, whose ended
trials Tune adds to brackets again, where they wait for results that never come.
"""

from __future__ import annotations

from ray.tune.experiment import Trial
from ray.tune.schedulers import HyperBandScheduler, TrialScheduler


class SettlingHyperBand(HyperBandScheduler):
    """`HyperBandScheduler` whose rung is settled when its last unfinished trial ends,
    that stops a trial still saving its pause at max_t, and that lets a restored sweep's
    ended trials out of their brackets."""

    _settling = False  # a class default: an unpickled older scheduler has no such field

    def on_trial_add(self, tune_controller, trial):
        super().on_trial_add(tune_controller, trial)
        if trial.status in (Trial.TERMINATED, Trial.ERROR):
            # a restored experiment adds its ended trials too: they never report, and
            # their rung would wait for them for good
            self._trial_info[trial][0].cleanup_trial(trial)

    def _process_bracket(self, tune_controller, bracket):
        settling, self._settling = self._settling, True
        try:
            if bracket.cur_iter_done() and bracket.finished():
                # Ray's cleanup_full stops PAUSED trials only: one whose pause is still
                # being saved would wake up PAUSED with nobody left to stop it
                for trial in bracket.current_trials():
                    if trial.status == Trial.PAUSED or trial.is_saving:
                        tune_controller.stop_trial(trial)
                return TrialScheduler.STOP
            return super()._process_bracket(tune_controller, bracket)
        finally:
            self._settling = settling

    def on_trial_remove(self, tune_controller, trial):
        bracket, _ = self._trial_info[trial]
        bracket.cleanup_trial(trial)
        # settling stops trials, and Tune calls this for each of them: the settling call
        # has the whole rung in hand
        if self._settling or not bracket.current_trials() or not bracket.cur_iter_done():
            return
        # at max_t this stops the waiting trials (they are done), else it halves the rung
        self._process_bracket(tune_controller, bracket)


def settling(scheduler):
    """The scheduler a restored sweep continues with: a plain `HyperBandScheduler`
    unpickled from a sweep started before this class existed becomes one (same state)."""
    if type(scheduler) is HyperBandScheduler:
        scheduler.__class__ = SettlingHyperBand
    return scheduler
