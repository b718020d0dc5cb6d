"""Scheduler registry: name -> (options model, factory).

Every scheduler measures time in the trainable's own `epoch` counter, which its
checkpoint keeps across restores (Tune's `training_iteration` restarts).
Ray is imported inside the factories so that validating a spec stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from orchestrator.spec import SweepSpec

TIME_ATTR = "epoch"


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AshaOptions(_Options):
    grace_period: int = Field(1, ge=1, description="epochs every trial runs before it can stop")
    reduction_factor: float = Field(3, ge=2)
    max_t: int | None = Field(None, ge=1, description="defaults to train.epochs")
    brackets: int = Field(1, ge=1)


class HyperbandOptions(_Options):
    reduction_factor: float = Field(3, ge=2)
    max_t: int | None = Field(None, ge=1, description="defaults to train.epochs")


class MedianOptions(_Options):
    grace_period: int = Field(1, ge=1)
    min_samples_required: int = Field(3, ge=1)


class PbtOptions(_Options):
    perturbation_interval: int = Field(2, ge=1, description="epochs between exploit/explore")
    burn_in_period: int = Field(0, ge=0)
    quantile_fraction: float = Field(0.25, gt=0, le=0.5)
    resample_probability: float = Field(0.25, ge=0, le=1)


class FifoOptions(_Options):
    pass


def _max_t(options: Any, spec: SweepSpec) -> int:
    return options.max_t or spec.max_epochs


def _asha(options: AshaOptions, spec: SweepSpec):
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=TIME_ATTR, max_t=_max_t(options, spec), grace_period=options.grace_period,
        reduction_factor=options.reduction_factor, brackets=options.brackets,
    )


def _hyperband(options: HyperbandOptions, spec: SweepSpec):
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(
        time_attr=TIME_ATTR, max_t=_max_t(options, spec), reduction_factor=options.reduction_factor
    )


def _median(options: MedianOptions, spec: SweepSpec):
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(
        time_attr=TIME_ATTR, grace_period=options.grace_period,
        min_samples_required=options.min_samples_required,
    )


def _pbt(options: PbtOptions, spec: SweepSpec):
    from ray.tune.schedulers import PopulationBasedTraining

    from orchestrator.space import pbt_mutations

    return PopulationBasedTraining(
        time_attr=TIME_ATTR, perturbation_interval=options.perturbation_interval,
        burn_in_period=options.burn_in_period, quantile_fraction=options.quantile_fraction,
        resample_probability=options.resample_probability,
        hyperparam_mutations=pbt_mutations(spec),
    )


def _fifo(options: FifoOptions, spec: SweepSpec):
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


@dataclass(frozen=True)
class Registered:
    options: type[_Options]
    factory: Callable[[Any, SweepSpec], Any]
    summary: str


SCHEDULERS: dict[str, Registered] = {
    "asha": Registered(AshaOptions, _asha, "ASHA: asynchronous successive halving (default)"),
    "hyperband": Registered(HyperbandOptions, _hyperband, "synchronous HyperBand"),
    "median": Registered(MedianOptions, _median, "median stopping rule"),
    "pbt": Registered(PbtOptions, _pbt, "population-based training of continuous keys"),
    "fifo": Registered(FifoOptions, _fifo, "no early termination"),
}


def create_scheduler(spec: SweepSpec):
    """The Ray Tune scheduler for a validated spec."""
    entry = SCHEDULERS[spec.scheduler.name]
    return entry.factory(spec.scheduler.options, spec)
