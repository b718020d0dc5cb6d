"""Learning-rate schedules as pure functions of the optimiser step.

Each schedule is `f(t, lr, cfg, steps_per_epoch, total_steps) -> rate`, evaluated
per optimiser step so warmup and the smooth schedules move every batch. The
epoch-granular families (step, multistep, exponential) change at epoch
boundaries, as torch's schedulers do when stepped once per epoch. `plateau`
is the one stateful schedule: `Plateau` keeps a multiplier updated per epoch.
Tests compare every family with torch.optim.lr_scheduler over a whole run.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.spec.settings import ScheduleConfig

ScheduleFn = Callable[[int, float, ScheduleConfig, int, int], float]


def _constant(t: int, lr: float, cfg: ScheduleConfig, spe: int, total: int) -> float:
    return lr


def _step(t: int, lr: float, cfg: ScheduleConfig, spe: int, total: int) -> float:
    # multiply by gamma every `step_size` epochs (docs/tuning.md: 0.1 -> x0.1 every 10)
    return lr * cfg.gamma ** ((t // spe) // cfg.step_size)


def _multistep(t: int, lr: float, cfg: ScheduleConfig, spe: int, total: int) -> float:
    # multiply by gamma at each milestone epoch reached so far
    return lr * cfg.gamma ** bisect.bisect_right(sorted(cfg.milestones), t // spe)


def _exponential(t: int, lr: float, cfg: ScheduleConfig, spe: int, total: int) -> float:
    # multiply by gamma once per epoch
    return lr * cfg.gamma ** (t // spe)


def _cosine(t: int, lr: float, cfg: ScheduleConfig, spe: int, total: int) -> float:
    # half a cosine from lr down to eta_min over the whole run
    return cfg.eta_min + (lr - cfg.eta_min) * (1 + math.cos(math.pi * t / max(1, total))) / 2


def _cosine_restarts(t: int, lr: float, cfg: ScheduleConfig, spe: int, total: int) -> float:
    # SGDR: cosine cycles of T_0 epochs, each T_mult times longer than the last
    t0 = cfg.T_0 * spe
    if cfg.T_mult == 1:
        t_cur, t_i = t % t0, t0
    else:
        n = int(math.log(t / t0 * (cfg.T_mult - 1) + 1, cfg.T_mult))
        t_cur = t - t0 * (cfg.T_mult**n - 1) / (cfg.T_mult - 1)
        t_i = t0 * cfg.T_mult**n
    return cfg.eta_min + (lr - cfg.eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def _anneal_cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


def _onecycle(t: int, lr: float, cfg: ScheduleConfig, spe: int, total: int) -> float:
    # rise from lr/div_factor to lr over pct_start of the run, then fall to
    # lr/(div_factor*final_div_factor); `lr` is the peak (torch's OneCycleLR max_lr)
    initial = lr / cfg.div_factor
    final = initial / cfg.final_div_factor
    peak_step = float(cfg.pct_start * total) - 1
    if t <= peak_step:
        return _anneal_cos(initial, lr, t / peak_step)
    return _anneal_cos(lr, final, (t - peak_step) / (total - 1 - peak_step))


def _linear(t: int, lr: float, cfg: ScheduleConfig, spe: int, total: int) -> float:
    # straight line from lr to end_factor * lr over the whole run
    return lr * (1.0 + (cfg.end_factor - 1.0) * min(t, total) / max(1, total))


SCHEDULES: dict[str, ScheduleFn] = {
    "constant": _constant,
    "step": _step,
    "multistep": _multistep,
    "exponential": _exponential,
    "cosine": _cosine,
    "cosine_restarts": _cosine_restarts,
    "onecycle": _onecycle,
    "linear": _linear,
    "plateau": _constant,  # its decay comes from `Plateau.scale`
}


def warmup_steps(cfg: ScheduleConfig, steps_per_epoch: int) -> int:
    return round(cfg.warmup_epochs * steps_per_epoch)


def lr_at(
    step: int,
    lr: float,
    cfg: ScheduleConfig,
    steps_per_epoch: int,
    total_steps: int,
    scale: float = 1.0,
) -> float:
    """The rate of optimiser step `step` (0-based) for a run of `total_steps`.

    Warmup ramps linearly from lr/W to lr over the first W steps; the schedule
    then runs over the remaining steps as if they were the whole run (torch's
    SequentialLR of LinearLR and the schedule). `scale` is the plateau multiplier.
    """
    w = warmup_steps(cfg, steps_per_epoch)
    if step < w:
        return lr * (step + 1) / w * scale
    return SCHEDULES[cfg.name](step - w, lr, cfg, steps_per_epoch, total_steps - w) * scale


@dataclass
class Plateau:
    """Reduce-on-plateau state: multiply the rate by `factor` after more than
    `patience` epochs without a relative improvement of `threshold` (torch's
    ReduceLROnPlateau with threshold_mode='rel', cooldown 0, min_lr 0)."""

    mode: str
    factor: float
    patience: int
    threshold: float
    scale: float = 1.0
    best: float | None = None
    bad_epochs: int = 0

    @classmethod
    def from_config(cls, cfg: ScheduleConfig, mode: str) -> Plateau:
        return cls(mode=mode, factor=cfg.factor, patience=cfg.patience, threshold=cfg.threshold)

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best * (1 - self.threshold)
        return value > self.best * (1 + self.threshold)

    def update(self, value: float, lr: float) -> float:
        """Feed one epoch's metric; returns the new multiplier."""
        if self._better(value):
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            # torch skips reductions smaller than eps=1e-8
            if lr * self.scale * (1 - self.factor) > 1e-8:
                self.scale *= self.factor
            self.bad_epochs = 0
        return self.scale

    def state_dict(self) -> dict:
        return {"scale": self.scale, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.scale, self.best, self.bad_epochs = state["scale"], state["best"], state["bad_epochs"]
