"""Scheduler option models: name -> (options, summary). Their factories, which build
Ray Tune's schedulers, are the engine's (`orchestrator.engine.schedulers`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestrator.spec.registry import Component, Options


class AshaOptions(Options):
    name: Literal["asha"] = "asha"
    grace_period: int = Field(1, ge=1, description="epochs every trial runs before it can stop")
    reduction_factor: float = Field(3, ge=2)
    max_t: int | None = Field(None, ge=1, description="defaults to train.epochs")
    brackets: int = Field(1, ge=1)


class HyperbandOptions(Options):
    name: Literal["hyperband"] = "hyperband"
    reduction_factor: float = Field(3, ge=2)
    max_t: int | None = Field(None, ge=1, description="defaults to train.epochs")


class MedianOptions(Options):
    name: Literal["median"] = "median"
    grace_period: int = Field(1, ge=1)
    min_samples_required: int = Field(3, ge=1)


class PbtOptions(Options):
    name: Literal["pbt"] = "pbt"
    perturbation_interval: int = Field(2, ge=1, description="epochs between exploit/explore")
    burn_in_period: int = Field(0, ge=0)
    quantile_fraction: float = Field(0.25, gt=0, le=0.5)
    resample_probability: float = Field(0.25, ge=0, le=1)


class FifoOptions(Options):
    name: Literal["fifo"] = "fifo"


SCHEDULERS: dict[str, Component] = {
    "asha": Component(AshaOptions, "ASHA: asynchronous successive halving (default)"),
    "hyperband": Component(HyperbandOptions, "synchronous HyperBand", needs_checkpoints=True),
    "median": Component(MedianOptions, "median stopping rule"),
    "pbt": Component(PbtOptions, "population-based training of continuous keys",
                     needs_checkpoints=True),
    "fifo": Component(FifoOptions, "no early termination"),
}
