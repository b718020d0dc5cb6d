"""The facts about a sweep that scheduler and searcher factories are built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.engine.warm_start import WarmStartPlan
from orchestrator.spec import SweepSpec

if TYPE_CHECKING:
    from orchestrator.engine.extend import ExtendPlan


@dataclass(frozen=True)
class BuildContext:
    seed: int
    max_epochs: int
    max_concurrent_trials: int | None = None
    # PBT: the continuous searched keys as Tune domains, nested as in the trial config
    mutations: dict = field(default_factory=dict)
    # a warm start (engine/warm_start.py) or an extension (engine/extend.py): (config,
    # metric) of the earlier trials a searcher that learns is given as evaluated, and the
    # configs it runs first (a warm start's re-runs; an extension's new draws)
    history: tuple = ()
    reruns: tuple = ()


def build_context(spec: SweepSpec, warm: WarmStartPlan | None = None,
                  extension: ExtendPlan | None = None) -> BuildContext:
    """What the scheduler and searcher factories need to know of the sweep."""
    from orchestrator.engine.space import pbt_mutations

    history, reruns = ((warm.history(), warm.points()) if warm else
                       (extension.known, extension.points) if extension else ((), ()))
    return BuildContext(
        seed=extension.seed if extension else spec.seed, max_epochs=spec.max_epochs,
        max_concurrent_trials=spec.max_concurrent_trials,
        mutations=pbt_mutations(spec) if spec.scheduler.name == "pbt" else {},
        history=tuple(history), reruns=tuple(reruns),
    )
