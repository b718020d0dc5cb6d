"""What the training itself shows, per epoch: gradient norms and update sizes.

The loss curve alone cannot always tell a rate too low from too little capacity, or a
rate too high from healthy noise; the training's own signals can (../shared/TUNING.md,
"Reading the training itself"). `Signals` measures, on sampled steps:

- `grad_norm`: the global L2 norm of every parameter's gradient, before clipping (mean
  over the epoch's measured steps), and `grad_norm_max` (their max; +inf if one was not
  finite);
- `update_ratio`: ||w_after - w_before|| / ||w_before|| over all trainable parameters
  of the model, one step's update against the weights it started from (median);
- `grad_norm_ratio`: the first weight layer's gradient norm against the last's (median):
  the weight layers are the modules whose `weight` has two or more dimensions (linear,
  convolution, embedding: not the 1-d scales of batch or layer norm), in the model's
  registration order; measured for nets of `MIN_WEIGHT_LAYERS` or more of them, null
  below (a net of two layers has nothing in between to vanish through).

Cost. Measuring a step takes about a fifth of a small MLP's step on a CPU (a few
small kernels and a flat copy of the weights), so a step is measured every
`SAMPLE_EVERY` steps of an epoch, its first step always (an epoch of any length has a
value). The values stay tensors on the device until the epoch ends and are read once
then: no device sync per step. `python -m bench.trainable --signals` measures the cost.

Mixed precision: the trainer's bf16 autocast keeps the parameters and their gradients
in fp32 and needs no GradScaler, so the gradients are read as they are. In a user's loop
(`trial.watch`, optimizer step hooks) they are read as the optimizer's step receives
them: unscaled by a GradScaler (its `step` unscales before calling the optimizer's), and
after the loop's own clipping, if it clips (clipping happens before `optimizer.step`).
"""

from __future__ import annotations

import math
import statistics

import torch
from torch import nn

from orchestrator.spec.settings import SIGNALS

# a measured step every SAMPLE_EVERY steps of an epoch (its steps 0, 16, 32, ...)
SAMPLE_EVERY = 16
# the fewest weight layers for a first/last layer gradient ratio
MIN_WEIGHT_LAYERS = 3


def weight_layers(model: nn.Module) -> list[nn.Parameter]:
    """The weights of the model's layers in registration order: each module's own
    `weight` of two or more dimensions (linear, convolution, embedding), trainable."""
    found = []
    for module in model.modules():
        weight = module._parameters.get("weight") if hasattr(module, "_parameters") else None
        if isinstance(weight, nn.Parameter) and weight.dim() >= 2 and weight.requires_grad:
            found.append(weight)
    return found


class Signals:
    """The accumulators of one epoch's signals for `model` (see the module's docstring).

    Per step: `due()` says whether this step is measured (and counts it); on a measured
    step `gradients()` (before any clipping), `before_step()` (after clipping, before the
    optimizer's step) and `after_step()`. `read()` ends the epoch: the four values (None
    where nothing was measured) and fresh accumulators.
    """

    def __init__(self, model: nn.Module, every: int = SAMPLE_EVERY):
        self.params = [p for p in model.parameters() if p.requires_grad]
        layers = weight_layers(model)
        self.ends = (layers[0], layers[-1]) if len(layers) >= MIN_WEIGHT_LAYERS else None
        # where the first and last layers' weights are among the parameters: their
        # gradient norms are read off the global norm's per-parameter ones
        ids = [id(p) for p in self.params]
        self._ends_at = None if self.ends is None else tuple(ids.index(id(w)) for w in self.ends)
        self.every = every
        # all fp32 on one device: norms stacked and weights concatenated as they are
        kinds = {(p.dtype, p.device) for p in self.params}
        self._uniform = len(kinds) <= 1 and all(p.dtype == torch.float32 for p in self.params)
        self.reset()

    def reset(self) -> None:
        """Fresh accumulators (a new epoch, or an epoch begun again)."""
        self._step = 0
        self._grad: list[torch.Tensor] = []
        self._layers: list[torch.Tensor] = []
        self._updates: list[torch.Tensor] = []
        self._before: torch.Tensor | None = None

    def due(self) -> bool:
        """Is this step measured? Counts the step."""
        due = self._step % self.every == 0
        self._step += 1
        return due

    def _flat(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """One fp32 vector of all the tensors (a copy)."""
        if self._uniform:
            return torch.cat([t.reshape(-1) for t in tensors])
        device = tensors[0].device
        return torch.cat([t.reshape(-1).to(device, torch.float32) for t in tensors])

    @torch.no_grad()
    def gradients(self) -> None:
        """The gradient norms of this step, as the gradients are now (before clipping)."""
        grads = [p.grad for p in self.params]
        if any(g is None for g in grads):  # a parameter the loss did not reach
            present = [i for i, g in enumerate(grads) if g is not None]
            grads = [grads[i] for i in present]
        else:
            present = None
        if not grads:
            return
        norms = torch._foreach_norm(grads)
        if not self._uniform:
            norms = [n.to(norms[0].device, torch.float32) for n in norms]
        self._grad.append(torch.linalg.vector_norm(torch.stack(norms)))
        if self._ends_at is not None:
            first, last = self._ends_at
            if present is not None:
                if first not in present or last not in present:
                    return
                first, last = present.index(first), present.index(last)
            self._layers.append(norms[first] / norms[last])

    @torch.no_grad()
    def before_step(self) -> None:
        """The weights the step starts from (a flat copy)."""
        if self.params:
            self._before = self._flat(self.params)

    @torch.no_grad()
    def after_step(self) -> None:
        """The step's update against the weights it started from."""
        before, self._before = self._before, None
        if before is None:
            return
        after = self._flat(self.params)
        change = torch.linalg.vector_norm(after.sub_(before))
        self._updates.append(change / torch.linalg.vector_norm(before))

    def read(self) -> dict[str, float | None]:
        """This epoch's values (one read from the device), and a fresh epoch."""
        series = (self._grad, self._updates, self._layers)
        lengths = [len(s) for s in series]
        values: list[float] = []
        if sum(lengths):
            device = next(s[0].device for s in series if s)
            values = torch.cat([torch.stack(s).to(device) for s in series if s]
                               ).double().tolist()
        grad, updates, layers = (values[sum(lengths[:i]):sum(lengths[:i + 1])]
                                 for i in range(3))
        self.reset()
        return dict(zip(SIGNALS, (_mean(grad), _max(grad), _median(updates),
                                  _median(layers))))


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _mean(values: list[float]) -> float | None:
    finite = _finite(values)
    return statistics.fmean(finite) if finite else None


def _max(values: list[float]) -> float | None:
    """The largest; +inf when a measured value was not finite (a gradient that
    overflowed is the largest there is)."""
    if not values:
        return None
    return max(values) if len(_finite(values)) == len(values) else math.inf


def _median(values: list[float]) -> float | None:
    finite = _finite(values)
    return statistics.median(finite) if finite else None


def empty() -> dict[str, None]:
    """The signals of an epoch where none were measured."""
    return dict.fromkeys(SIGNALS)
