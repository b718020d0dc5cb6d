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

This subclass settles the rung on every removal that leaves all live trials at it.
"""

from __future__ import annotations

from ray.tune.schedulers import HyperBandScheduler


class SettlingHyperBand(HyperBandScheduler):
    """`HyperBandScheduler` whose rung is settled when its last unfinished trial ends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._settling = False

    def _process_bracket(self, tune_controller, bracket):
        settling, self._settling = self._settling, True
        try:
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
