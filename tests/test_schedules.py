"""Every schedule against torch.optim.lr_scheduler's own values over a whole run."""

from __future__ import annotations

import math

import pytest
import torch

from orchestrator.spec.settings import ScheduleConfig
from orchestrator.trainable.schedules import SCHEDULES, Plateau, lr_at

SPE, EPOCHS, LR = 7, 30, 0.1
TOTAL = SPE * EPOCHS


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)


def torch_rates(make, per: str = "step", steps: int = TOTAL) -> list[float]:
    """The rate of each optimiser step under a torch scheduler stepped per step or epoch."""
    opt = _optimizer()
    sched = make(opt)
    rates = []
    for step in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        if per == "step" or (step + 1) % SPE == 0:
            sched.step()
    return rates


def our_rates(cfg: ScheduleConfig, steps: int = TOTAL) -> list[float]:
    return [lr_at(t, LR, cfg, SPE, steps) for t in range(steps)]


S = torch.optim.lr_scheduler
CASES = {
    "constant": (dict(), lambda o: S.LambdaLR(o, lambda _: 1.0), "step"),
    "step": (dict(step_size=10, gamma=0.1), lambda o: S.StepLR(o, 10, 0.1), "epoch"),
    "multistep": (dict(milestones=(5, 12, 20), gamma=0.5),
                  lambda o: S.MultiStepLR(o, [5, 12, 20], 0.5), "epoch"),
    "exponential": (dict(gamma=0.9), lambda o: S.ExponentialLR(o, 0.9), "epoch"),
    "cosine": (dict(eta_min=0.001), lambda o: S.CosineAnnealingLR(o, TOTAL, 0.001), "step"),
    "cosine_restarts": (dict(T_0=4, T_mult=2, eta_min=0.001),
                        lambda o: S.CosineAnnealingWarmRestarts(o, 4 * SPE, 2, 0.001), "step"),
    "onecycle": (dict(pct_start=0.25, div_factor=10, final_div_factor=100),
                 lambda o: S.OneCycleLR(o, LR, total_steps=TOTAL, pct_start=0.25,
                                        div_factor=10, final_div_factor=100,
                                        cycle_momentum=False), "step"),
    "linear": (dict(end_factor=0.05),
               lambda o: S.LinearLR(o, 1.0, 0.05, total_iters=TOTAL), "step"),
}


def test_every_schedule_has_a_case():
    assert set(SCHEDULES) - {"plateau"} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_schedule_matches_torch(name):
    options, make, per = CASES[name]
    ours = our_rates(ScheduleConfig(name=name, **options))
    theirs = torch_rates(make, per)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        assert math.isclose(a, b, rel_tol=1e-9), (name, step, a, b)


def test_cosine_restarts_with_fixed_cycles_matches_torch():
    ours = our_rates(ScheduleConfig(name="cosine_restarts", T_0=3, T_mult=1))
    theirs = torch_rates(lambda o: S.CosineAnnealingWarmRestarts(o, 3 * SPE, 1))
    for a, b in zip(ours, theirs):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)


@pytest.mark.parametrize("name", ["cosine", "step", "constant"])
def test_warmup_then_schedule_matches_torch_sequential(name):
    warm_epochs = 2
    w = warm_epochs * SPE
    options, make, per = CASES[name]
    ours = our_rates(ScheduleConfig(name=name, warmup_epochs=warm_epochs, **options))
    # torch: LinearLR warmup, then the schedule over the remaining steps
    rest = TOTAL - w

    def sequential(o):
        warm = S.LinearLR(o, start_factor=1 / w, end_factor=1.0, total_iters=w - 1)
        if name == "cosine":
            main = S.CosineAnnealingLR(o, rest, options["eta_min"])
        elif name == "step":
            main = S.StepLR(o, 10 * SPE, 0.1)  # per step, so one epoch = SPE steps
        else:
            main = S.LambdaLR(o, lambda _: 1.0)
        return S.SequentialLR(o, [warm, main], milestones=[w])

    theirs = torch_rates(sequential, "step")
    for step, (a, b) in enumerate(zip(ours, theirs)):
        assert math.isclose(a, b, rel_tol=1e-9), (step, a, b)


def test_warmup_ramps_linearly_to_the_base_rate():
    cfg = ScheduleConfig(name="constant", warmup_epochs=1)
    rates = our_rates(cfg)
    assert rates[0] == pytest.approx(LR / SPE)
    assert rates[SPE - 1] == pytest.approx(LR)
    assert all(a < b for a, b in zip(rates[: SPE - 1], rates[1:SPE]))


def test_step_decay_follows_tuning_md():
    # docs/tuning.md: start at 0.1, multiply by 0.1 every 10 epochs
    cfg = ScheduleConfig(name="step", step_size=10, gamma=0.1)
    assert [lr_at(e * SPE, 0.1, cfg, SPE, TOTAL) for e in (0, 9, 10, 19, 20)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001]
    )


@pytest.mark.parametrize("mode", ["min", "max"])
def test_plateau_matches_torch(mode):
    values = [1.0, 0.9, 0.85, 0.86, 0.85, 0.851, 0.849, 0.85, 0.7, 0.71, 0.72, 0.73, 0.74, 0.7]
    if mode == "max":
        values = [2 - v for v in values]
    cfg = ScheduleConfig(name="plateau", factor=0.5, patience=2, threshold=1e-3)
    ours = Plateau.from_config(cfg, mode)
    opt = _optimizer()
    theirs = S.ReduceLROnPlateau(opt, mode=mode, factor=0.5, patience=2, threshold=1e-3)
    for value in values:
        ours.update(value, LR)
        theirs.step(value)
        assert math.isclose(LR * ours.scale, opt.param_groups[0]["lr"], rel_tol=1e-9)
    assert ours.scale < 1  # the sequence did reduce the rate


def test_plateau_state_round_trips():
    p = Plateau("min", 0.5, 1, 0.0)
    for v in (1.0, 1.0, 1.0):
        p.update(v, LR)
    q = Plateau("min", 0.5, 1, 0.0)
    q.load_state_dict(p.state_dict())
    assert q.state_dict() == p.state_dict()
