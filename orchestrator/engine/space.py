"""Spec search space -> Ray Tune domains. Nothing else builds domains."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray import tune

from orchestrator.distributions import CONTINUOUS, Distribution
from orchestrator.dotted import set_dotted

if TYPE_CHECKING:
    from orchestrator.spec import SweepSpec


def to_domain(dist: Distribution) -> Any:
    """One spec distribution as a Tune domain (integer bounds are inclusive here,
    exclusive in Tune, hence the +1)."""
    a = dist.args
    return {
        "uniform": lambda: tune.uniform(a[0], a[1]),
        "loguniform": lambda: tune.loguniform(a[0], a[1]),
        "quniform": lambda: tune.quniform(a[0], a[1], a[2]),
        "randint": lambda: tune.randint(a[0], a[1] + 1),
        "lograndint": lambda: tune.lograndint(a[0], a[1] + 1),
        "choice": lambda: tune.choice(list(a)),
        "grid": lambda: tune.grid_search(list(a)),
    }[dist.kind]()


def _nest(flat: dict[str, Any]) -> dict:
    nested: dict = {}
    for key, value in flat.items():
        set_dotted(nested, key, value)
    return nested


def _merge(base: dict, overlay: dict) -> dict:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def param_space(spec: SweepSpec) -> dict:
    """The Tuner's param_space: every `train` setting (searched ones as domains),
    the objective and the spec seed, in the shape `TrialConfig` validates."""
    from orchestrator.schedulers import SCHEDULERS

    domains = {key: to_domain(dist) for key, dist in spec.search_space.items()}
    train = spec.train.model_dump(mode="json")
    if train["checkpoint_every"] is None and SCHEDULERS[spec.scheduler.name].needs_checkpoints:
        train["checkpoint_every"] = 1  # the scheduler continues trials from checkpoints
    return {
        "train": _merge(train, _nest(domains)),
        "objective": {"metric": spec.metric, "mode": spec.mode},
        "seed": spec.seed,
    }


def pbt_mutations(spec: SweepSpec) -> dict:
    """PBT's hyperparam_mutations: the continuous searched keys, nested as in the config."""
    keys = {k: to_domain(d) for k, d in spec.search_space.items() if d.kind in CONTINUOUS}
    return {"train": _nest(keys)}
