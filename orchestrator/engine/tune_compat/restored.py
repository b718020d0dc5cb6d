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
    return Restored(local.get_run_config(), config.search_alg, config.scheduler)
