"""Search space -> Tune domains, and the scheduler/searcher registries."""

from __future__ import annotations

import pytest
from ray import tune
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.search.basic_variant import BasicVariantGenerator
from ray.tune.search.sample import Domain

from orchestrator.engine.context import build_context
from orchestrator.engine.schedulers import TIME_ATTR
from orchestrator.engine.schedulers import create_scheduler as _create_scheduler
from orchestrator.engine.searchers import create_searcher as _create_searcher
from orchestrator.engine.space import param_space, pbt_mutations, to_domain
from orchestrator.errors import OrchestratorError
from orchestrator.spec.distributions import Distribution
from orchestrator.spec.model import spec_from_mapping
from orchestrator.spec.schedulers import SCHEDULERS
from orchestrator.spec.searchers import SEARCHERS

SPACE = {
    "optimizer.lr": {"loguniform": [1e-4, 0.3]},
    "batch_size": {"choice": [32, 64]},
    "model.depth": {"randint": [1, 3]},
    "model.hidden": {"lograndint": [8, 16]},
    "model.dropout": {"quniform": [0.0, 0.5, 0.1]},
}


def spec(**changes):
    data = {"name": "t", "train": {"dataset": {"name": "synthetic"}, "epochs": 7},
            "search_space": SPACE, "num_samples": 2}
    data.update(changes)
    return spec_from_mapping(data)


def create_scheduler(s):
    return _create_scheduler(s.scheduler, build_context(s))


def create_searcher(s):
    return _create_searcher(s.searcher, build_context(s))


@pytest.mark.parametrize("kind, args", [("randint", [1, 3]), ("lograndint", [1, 4])])
def test_integer_domains_are_inclusive(kind, args):
    domain = to_domain(Distribution.model_validate({kind: args}))
    values = set(domain.sample(size=400, random_state=0))
    assert values == set(range(args[0], args[1] + 1))


def test_continuous_domains_stay_in_bounds():
    for kind, args in [("uniform", [0.1, 0.2]), ("loguniform", [1e-4, 1e-2]),
                       ("quniform", [0, 1, 0.25])]:
        values = to_domain(Distribution.model_validate({kind: args})).sample(size=200,
                                                                              random_state=1)
        assert all(args[0] <= v <= args[1] for v in values)
    q = to_domain(Distribution.model_validate({"quniform": [0, 1, 0.25]})).sample(
        size=50, random_state=2)
    assert all(abs(v / 0.25 - round(v / 0.25)) < 1e-9 for v in q)


def test_grid_is_a_grid_search():
    assert to_domain(Distribution.model_validate({"grid": [1, 2]})) == {"grid_search": [1, 2]}


def test_param_space_nests_domains_into_every_train_setting():
    space = param_space(spec())
    assert isinstance(space["train"]["optimizer"]["lr"], Domain)
    assert space["train"]["optimizer"]["momentum"] == 0.9  # fixed settings stay constants
    assert space["train"]["epochs"] == 7
    assert space["objective"] == {"metric": "val_acc", "mode": "max"}
    assert space["seed"] == 0


def test_pbt_mutates_only_continuous_keys():
    mutations = pbt_mutations(spec())
    assert set(mutations["train"]) == {"optimizer", "model"}
    assert set(mutations["train"]["model"]) == {"dropout"}


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_scheduler_builds_and_counts_epochs(name):
    s = spec(scheduler={"name": name})
    scheduler = create_scheduler(s)
    assert isinstance(scheduler, TrialScheduler)
    if not isinstance(scheduler, FIFOScheduler):
        assert scheduler._time_attr == TIME_ATTR


def test_every_option_model_has_a_factory_and_every_factory_options():
    from orchestrator.engine import schedulers, searchers

    assert set(schedulers.FACTORIES) == set(SCHEDULERS)
    assert set(searchers.FACTORIES) == set(SEARCHERS)


def test_asha_max_t_defaults_to_epochs():
    assert create_scheduler(spec())._max_t == 7
    assert create_scheduler(spec(scheduler={"name": "asha", "max_t": 3}))._max_t == 3


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_every_searcher_builds(name):
    space = {"batch_size": {"grid": [32, 64]}} if name == "grid" else SPACE
    searcher = create_searcher(spec(searcher={"name": name}, search_space=space))
    assert isinstance(searcher, BasicVariantGenerator | Searcher)


def test_optuna_without_the_package_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_optuna(name, *args, **kwargs):
        if name.startswith("optuna"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optuna)
    with pytest.raises(OrchestratorError, match=r"pip install -e '.\[optuna\]'"):
        create_searcher(spec(searcher={"name": "optuna"}))


def test_random_searcher_is_seeded_from_the_spec():
    def samples(seed):
        gen = create_searcher(spec(seed=seed))
        gen.add_configurations({"x": {"run": lambda config: None,
                                      "config": {"v": tune.uniform(0, 1)}, "num_samples": 3}})
        out = []
        while (trial := gen.next_trial()) is not None:
            out.append(trial.config["v"])
        return out

    assert samples(1) == samples(1) != samples(2)


def test_asha_rungs_are_rebuilt_from_history_on_resume():
    """Tune does not save the scheduler: replay_history gives ASHA back its rungs."""
    from orchestrator.engine.tune_compat import replay_history

    s = spec(scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2})
    scheduler = create_scheduler(s)
    scheduler.set_search_properties("val_acc", "max")
    history = [(f"t{i}", epoch, 0.1 * i + 0.01 * epoch) for i in range(4)
               for epoch in range(1, 5)]
    assert replay_history(scheduler, history, "max")
    rungs = {milestone: dict(recorded) for milestone, recorded in scheduler._brackets[0]._rungs}
    assert set(rungs) == {1, 2, 4}  # grace 1, factor 2, max_t 7
    for milestone, recorded in rungs.items():
        assert recorded == {f"t{i}": 0.1 * i + 0.01 * milestone for i in range(4)}
    # a minimised metric is recorded negated, as ASHA itself does
    other = create_scheduler(s)
    replay_history(other, [("a", 1, 0.5)], "min")
    assert dict(other._brackets[0]._rungs[-1][1]) == {"a": -0.5}
    # schedulers whose state cannot be rebuilt from ids say so
    assert not replay_history(create_scheduler(spec(scheduler={"name": "median"})), history,
                              "max")
