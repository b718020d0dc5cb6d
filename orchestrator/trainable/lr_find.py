"""The learning-rate range test (Smith 2015; fastai's and Lightning's lr_find).

From a fresh model built from the spec's fixed training settings (data, model,
optimizer with its momentum/betas, batch size), the rate grows exponentially from
`min_lr` to `max_lr` over `steps` mini-batches while the smoothed training loss is
recorded; the test stops early once that loss exceeds `DIVERGE_FACTOR` times its
minimum. The suggestion is the rate of the steepest descent of the smoothed loss
(against log lr) before its minimum, kept `BELOW_MINIMUM` times under the rate of the
minimum. No Ray: it runs in-process, on the GPU
when there is one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from orchestrator.spec.settings import TrialConfig
from orchestrator.trainable.scaling import effective_lr
from orchestrator.trainable.trainer import Trainer

SMOOTHING = 0.98  # exponential moving average of the loss, debiased (fastai's beta)
DIVERGE_FACTOR = 4.0  # stop once the smoothed loss is this many times its minimum
SKIP_START = 0.1  # the first tenth of the curve is the average warming up: not judged
# the loss bottoms out just before training turns unstable: the suggestion keeps at least
# this factor below the rate of the minimum (the steepest descent often sits right on it)
BELOW_MINIMUM = 3.0
RANGE_BELOW = 10.0  # the search range starts a decade under the suggestion...
RANGE_ABOVE = 3.0  # ...and ends a little above it, but never past the loss's minimum


@dataclass
class LrFindResult:
    lrs: np.ndarray  # the rate of each step (the optimiser's own, after batch scaling)
    losses: np.ndarray  # the smoothed, debiased loss after each step
    raw_losses: np.ndarray
    suggested_lr: float  # the optimiser's rate (effective rate)
    low: float
    high: float
    reference_lr: float  # the same suggestion as `optimizer.lr` at the reference batch size
    reference_low: float
    reference_high: float
    stopped_early: bool

    def search_line(self) -> str:
        """A ready search-space line for the spec (optimizer.lr is the rate before batch
        scaling)."""
        return (f"optimizer.lr: {{loguniform: [{self.reference_low:.3g}, "
                f"{self.reference_high:.3g}]}}")


def _batches(trainer: Trainer, generator: torch.Generator):
    """Mini-batches of the training split, reshuffled every pass, forever."""
    while True:
        yield from trainer.data.train_batches(trainer.batch_size, generator)


def suggestion(lrs: np.ndarray, losses: np.ndarray) -> tuple[int, int]:
    """(index of the steepest descent, index of the minimum) of a smoothed curve."""
    end = int(np.nanargmin(losses))
    start = min(int(len(losses) * SKIP_START), max(end - 1, 0))
    if end - start < 2:
        return start, end
    slope = np.gradient(losses[start:end + 1], np.log10(lrs[start:end + 1]))
    return start + int(np.argmin(slope)), end


def lr_range_test(config: TrialConfig, min_lr: float = 1e-7, max_lr: float = 10.0,
                  steps: int = 100, device: str = "cpu") -> LrFindResult:
    trainer = Trainer(config, 0, device)
    model, optimizer = trainer.model, trainer.optimizer
    batches = _batches(trainer, torch.Generator().manual_seed(trainer.seed))
    factor = (max_lr / min_lr) ** (1 / (steps - 1))
    lrs, raw, smoothed = [], [], []
    average, best = 0.0, math.inf
    model.train()
    for step in range(steps):
        lr = min_lr * factor**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        xb, yb = next(batches)
        with trainer._autocast():
            loss = trainer.loss(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        average = SMOOTHING * average + (1 - SMOOTHING) * value
        debiased = average / (1 - SMOOTHING ** (step + 1))
        lrs.append(lr)
        raw.append(value)
        smoothed.append(debiased)
        best = min(best, debiased)
        if not math.isfinite(debiased) or debiased > DIVERGE_FACTOR * best:
            break
    lrs_a, losses = np.array(lrs), np.array(smoothed)
    finite = np.isfinite(losses)
    steep, lowest = suggestion(lrs_a[finite], losses[finite])
    at_minimum = float(lrs_a[finite][lowest])
    suggested = min(float(lrs_a[finite][steep]), at_minimum / BELOW_MINIMUM)
    low = suggested / RANGE_BELOW
    high = min(suggested * RANGE_ABOVE, at_minimum)
    high = max(high, suggested)
    # optimizer.lr is given at the reference batch size: effective = lr * (b / ref) ** p
    scaling = config.train.batch_scaling
    scale = effective_lr(1.0, trainer.batch_size, scaling)
    return LrFindResult(lrs_a, losses, np.array(raw), suggested, low, high,
                        suggested / scale, low / scale, high / scale,
                        stopped_early=len(lrs) < steps)
