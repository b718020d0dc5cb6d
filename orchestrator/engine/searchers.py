"""Searcher factories: validated options (`orchestrator.spec.searchers`) -> Ray Tune
search algorithm, all seeded from the spec."""

from __future__ import annotations

from orchestrator.engine.context import BuildContext
from orchestrator.errors import OrchestratorError
from orchestrator.spec.registry import Options
from orchestrator.spec.searchers import OptunaOptions


def _basic(options: Options, context: BuildContext):
    from ray.tune.search.basic_variant import BasicVariantGenerator

    # Tune ignores TuneConfig.max_concurrent_trials for this generator: it takes its own.
    # It cannot learn from a warm start's history: it gets the re-runs, drawn first
    return BasicVariantGenerator(random_state=context.seed,
                                 max_concurrent=context.max_concurrent_trials or 0,
                                 points_to_evaluate=[dict(p) for p in context.reruns] or None)


def _optuna(options: OptunaOptions, context: BuildContext):
    try:
        from optuna.samplers import TPESampler
        from ray.tune.search.optuna import OptunaSearch
    except ImportError as exc:
        raise OrchestratorError(
            "searcher.name: 'optuna' needs the optuna package: pip install -e '.[optuna]'"
        ) from exc
    # TPE counts the known trials of a warm start among its startup trials
    sampler = TPESampler(seed=context.seed, n_startup_trials=options.n_startup_trials)
    if context.history or context.reruns:
        from orchestrator.engine.warm_searcher import WarmOptunaSearch

        return WarmOptunaSearch(sampler=sampler, history=list(context.history),
                                reruns=list(context.reruns))
    return OptunaSearch(sampler=sampler)


FACTORIES = {"random": _basic, "grid": _basic, "optuna": _optuna}


def create_searcher(options: Options, context: BuildContext):
    """The Ray Tune search algorithm for validated options."""
    return FACTORIES[options.name](options, context)
