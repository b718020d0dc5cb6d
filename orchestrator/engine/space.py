"""Spec search space -> Ray Tune domains. Nothing else builds domains."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray import tune

from orchestrator.engine import shipping
from orchestrator.spec.distributions import CONTINUOUS, Distribution
from orchestrator.spec.dotted import set_dotted
from orchestrator.spec.settings import GROUP_KEY, LoopConfig

if TYPE_CHECKING:
    from orchestrator.spec.model import SweepSpec


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
    from orchestrator.spec.schedulers import SCHEDULERS

    domains = {key: to_domain(dist) for key, dist in spec.search_space.items()}
    train = spec.train.model_dump(mode="json")
    # schedulers that continue trials (hyperband, pbt) need a checkpoint every epoch
    every_epoch = SCHEDULERS[spec.scheduler.name].needs_checkpoints
    space = {
        "train": _merge(train, _nest(domains)),
        "objective": {"metric": spec.metric, "mode": spec.mode},
        "seed": spec.seed,
        "code": shipping.code_config(spec),
    }
    if isinstance(spec.train, LoopConfig):  # the user's config stays theirs alone
        space["checkpoint"] = {"every": 1 if every_epoch else None}
    elif train["checkpoint_every"] is None and every_epoch:
        space["train"]["checkpoint_every"] = 1
    if spec.resources.workers > 1:  # the trial's worker group (trainable/distributed.py)
        space[GROUP_KEY] = spec.resources.model_dump(mode="json")
    return space


def pbt_mutations(spec: SweepSpec) -> dict:
    """PBT's hyperparam_mutations: the continuous searched keys, nested as in the config."""
    keys = {k: to_domain(d) for k, d in spec.search_space.items() if d.kind in CONTINUOUS}
    return {"train": _nest(keys)}
