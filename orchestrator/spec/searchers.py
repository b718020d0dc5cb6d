"""Searcher option models: name -> (options, summary); all seeded from the spec. Their
factories are the engine's (`orchestrator.engine.searchers`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestrator.spec.registry import Component, Options


class RandomOptions(Options):
    name: Literal["random"] = "random"


class GridOptions(Options):
    name: Literal["grid"] = "grid"


class OptunaOptions(Options):
    name: Literal["optuna"] = "optuna"
    n_startup_trials: int = Field(10, ge=1, description="random trials before TPE models")


SEARCHERS: dict[str, Component] = {
    "random": Component(RandomOptions, "random sampling, grid keys crossed (default)"),
    "grid": Component(GridOptions, "every combination of grid keys"),
    "optuna": Component(OptunaOptions, "Optuna TPE (extra: optuna)"),
}
