"""Searcher registry: name -> (options model, factory). All seeded from the spec."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from orchestrator.errors import OrchestratorError
from orchestrator.schedulers import Registered, _Options

if TYPE_CHECKING:
    from orchestrator.spec import SweepSpec


class RandomOptions(_Options):
    pass


class GridOptions(_Options):
    pass


class OptunaOptions(_Options):
    n_startup_trials: int = Field(10, ge=1, description="random trials before TPE models")


def _basic(options: _Options, spec: SweepSpec):
    from ray.tune.search.basic_variant import BasicVariantGenerator

    # Tune ignores TuneConfig.max_concurrent_trials for this generator: it takes its own
    return BasicVariantGenerator(random_state=spec.seed,
                                 max_concurrent=spec.max_concurrent_trials or 0)


def _optuna(options: OptunaOptions, spec: SweepSpec):
    try:
        from optuna.samplers import TPESampler
        from ray.tune.search.optuna import OptunaSearch
    except ImportError as exc:
        raise OrchestratorError(
            "searcher.name: 'optuna' needs the optuna package: pip install -e '.[optuna]'"
        ) from exc
    sampler = TPESampler(seed=spec.seed, n_startup_trials=options.n_startup_trials)
    return OptunaSearch(sampler=sampler)


SEARCHERS: dict[str, Registered] = {
    "random": Registered(RandomOptions, _basic, "random sampling, grid keys crossed (default)"),
    "grid": Registered(GridOptions, _basic, "every combination of grid keys"),
    "optuna": Registered(OptunaOptions, _optuna, "Optuna TPE (extra: optuna)"),
}


def create_searcher(spec: SweepSpec):
    """The Ray Tune search algorithm for a validated spec."""
    entry = SEARCHERS[spec.searcher.name]
    return entry.factory(spec.searcher.options, spec)
