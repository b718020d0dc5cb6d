"""Scheduler registry: name -> (options model, factory).

Every scheduler measures time in the trainable's own `epoch` counter, which its
checkpoint keeps across restores (Tune's `training_iteration` restarts).
Ray is imported inside the factories so that validating a spec stays fast.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from orchestrator.registry import BuildContext, Options, Registered

TIME_ATTR = "epoch"


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


def _max_t(options: Any, context: BuildContext) -> int:
    return options.max_t or context.max_epochs


def _asha(options: AshaOptions, context: BuildContext):
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=TIME_ATTR, max_t=_max_t(options, context), grace_period=options.grace_period,
        reduction_factor=options.reduction_factor, brackets=options.brackets,
    )


def _hyperband(options: HyperbandOptions, context: BuildContext):
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(
        time_attr=TIME_ATTR, max_t=_max_t(options, context),
        reduction_factor=options.reduction_factor,
    )


def _median(options: MedianOptions, context: BuildContext):
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(
        time_attr=TIME_ATTR, grace_period=options.grace_period,
        min_samples_required=options.min_samples_required,
    )


def _pbt(options: PbtOptions, context: BuildContext):
    from ray.tune.schedulers import PopulationBasedTraining

    return PopulationBasedTraining(
        time_attr=TIME_ATTR, perturbation_interval=options.perturbation_interval,
        burn_in_period=options.burn_in_period, quantile_fraction=options.quantile_fraction,
        resample_probability=options.resample_probability,
        hyperparam_mutations=context.mutations,
    )


def _fifo(options: FifoOptions, context: BuildContext):
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


SCHEDULERS: dict[str, Registered] = {
    "asha": Registered(AshaOptions, _asha, "ASHA: asynchronous successive halving (default)"),
    "hyperband": Registered(HyperbandOptions, _hyperband, "synchronous HyperBand",
                            needs_checkpoints=True),
    "median": Registered(MedianOptions, _median, "median stopping rule"),
    "pbt": Registered(PbtOptions, _pbt, "population-based training of continuous keys",
                      needs_checkpoints=True),
    "fifo": Registered(FifoOptions, _fifo, "no early termination"),
}


def create_scheduler(options: Options, context: BuildContext):
    """The Ray Tune scheduler for validated options."""
    return SCHEDULERS[options.name].factory(options, context)


def replay_history(scheduler: Any, history: list[tuple[str, int, float]], mode: str) -> bool:
    """Give a restored scheduler back what it had learnt from `history`
    ((trial_id, epoch, metric) rows). Returns whether it could.

    Tune does not save its scheduler with the experiment state: a restored sweep gets
    the scheduler pickled when the sweep began, with no results in it. ASHA with one
    bracket records a trial's metric at each rung's epoch, whatever the order, so the
    rungs are rebuilt exactly from the history; its remaining trials are then judged
    against every trial of the sweep, not just the ones that run after the resume.
    """
    from ray.tune.schedulers import AsyncHyperBandScheduler

    if not isinstance(scheduler, AsyncHyperBandScheduler) or len(scheduler._brackets) != 1:
        return False
    sign = 1.0 if mode == "max" else -1.0
    at = {(trial_id, int(epoch)): value for trial_id, epoch, value in history}
    for milestone, recorded in scheduler._brackets[0]._rungs:
        for (trial_id, epoch), value in at.items():
            if epoch == milestone and value == value:  # NaN never reaches a rung
                recorded.setdefault(trial_id, sign * value)
    return True
