"""Searcher registry: name -> (options model, factory). All seeded from the spec."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestrator.errors import OrchestratorError
from orchestrator.registry import BuildContext, Options, Registered


class RandomOptions(Options):
    name: Literal["random"] = "random"


class GridOptions(Options):
    name: Literal["grid"] = "grid"


class OptunaOptions(Options):
    name: Literal["optuna"] = "optuna"
    n_startup_trials: int = Field(10, ge=1, description="random trials before TPE models")


def _basic(options: Options, context: BuildContext):
    from ray.tune.search.basic_variant import BasicVariantGenerator

    # Tune ignores TuneConfig.max_concurrent_trials for this generator: it takes its own
    return BasicVariantGenerator(random_state=context.seed,
                                 max_concurrent=context.max_concurrent_trials or 0)


def _optuna(options: OptunaOptions, context: BuildContext):
    try:
        from optuna.samplers import TPESampler
        from ray.tune.search.optuna import OptunaSearch
    except ImportError as exc:
        raise OrchestratorError(
            "searcher.name: 'optuna' needs the optuna package: pip install -e '.[optuna]'"
        ) from exc
    sampler = TPESampler(seed=context.seed, n_startup_trials=options.n_startup_trials)
    return OptunaSearch(sampler=sampler)


SEARCHERS: dict[str, Registered] = {
    "random": Registered(RandomOptions, _basic, "random sampling, grid keys crossed (default)"),
    "grid": Registered(GridOptions, _basic, "every combination of grid keys"),
    "optuna": Registered(OptunaOptions, _optuna, "Optuna TPE (extra: optuna)"),
}


def create_searcher(options: Options, context: BuildContext):
    """The Ray Tune search algorithm for validated options."""
    return SEARCHERS[options.name].factory(options, context)
