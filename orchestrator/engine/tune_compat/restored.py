"""What `Tuner.restore` restored, reached through the Tuner's private local tuner
(`tuner._local_tuner`: its RunConfig, and its TuneConfig's searcher and scheduler); Ray
has no public getter for them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Restored:
    """The restored Tuner's parts a resume replaces or feeds: `run_config` (its callbacks
    and stop are set on it), the searcher (`search_alg`, None for Tune's basic
    generator) and the scheduler."""

    run_config: Any
    search_alg: Any
    scheduler: Any


def restored(tuner: Any) -> Restored:
    """The parts of a Tuner made by `Tuner.restore` (see `Restored`)."""
    local = tuner._local_tuner
    config = local._tune_config
    return Restored(local.get_run_config(), _limited(config), config.scheduler)


def _limited(tune_config: Any) -> Any:
    """The restored searcher, in the ConcurrencyLimiter Tune would wrap it in (the
    config's `max_concurrent_trials` then cleared): a resume tells the limiter of the
    trials that ended after the snapshot (`SearcherHearsOfEnds`), or it counts them
    running for good and, at its limit, the resumed sweep waits forever (Optuna, 2 at a
    time)."""
    from ray.tune.search import ConcurrencyLimiter, Searcher

    search_alg, limit = tune_config.search_alg, tune_config.max_concurrent_trials
    if isinstance(search_alg, Searcher) and not isinstance(search_alg, ConcurrencyLimiter) \
            and limit:
        tune_config.search_alg = ConcurrencyLimiter(search_alg, max_concurrent=limit)
        tune_config.max_concurrent_trials = None
    return tune_config.search_alg
