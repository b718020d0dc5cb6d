"""The loss a trial trains on and the metrics it reports, by task.

Classification: cross entropy (with optional label smoothing); it reports val_loss and
val_acc. Regression: mse, l1 or huber; it reports val_loss (the chosen loss), val_mae
and val_r2 (R² against the training mean: 0 is predicting that mean, 1 is perfect).
An (N, 1) output meets an (N,) target by squeezing.

The chance level, what the diagnosis measures training against, is the validation loss
(and accuracy) of always predicting the training split's class frequencies, or, for a
regression, its mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

REGRESSION_LOSSES: dict[str, Callable] = {
    "mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss,
}


def aligned(output: torch.Tensor, target: torch.Tensor, task: str) -> torch.Tensor:
    """The output in the target's shape: (N, 1) -> (N,) against an (N,) target."""
    if task == "regression" and output.dim() == target.dim() + 1 and output.shape[-1] == 1:
        return output.squeeze(-1)
    return output


def loss_function(task: str, name: str, label_smoothing: float = 0.0) -> Callable:
    """loss(output, target, reduction) for the task."""
    if task == "classification":
        def cross_entropy(output, target, reduction="mean"):
            return F.cross_entropy(output, target, label_smoothing=label_smoothing,
                                   reduction=reduction)
        return cross_entropy
    fn = REGRESSION_LOSSES[name]

    def regression(output, target, reduction="mean"):
        return fn(aligned(output, target, task).float(), target, reduction=reduction)
    return regression


class Prior:
    """What the chance level predicts, from the training targets: class frequencies
    (+1 each: a class absent from train) or the mean target."""

    def __init__(self, task: str, num_outputs: int):
        self.task, self.num_outputs = task, num_outputs
        self.counts = torch.zeros(num_outputs, dtype=torch.float64)
        self.total: torch.Tensor | None = None
        self.n = 0

    def add(self, target: torch.Tensor) -> None:
        target = target.detach().cpu()
        if self.task == "classification":
            self.counts += torch.bincount(target.reshape(-1), minlength=self.num_outputs
                                          ).double()[: self.num_outputs]
        else:
            summed = target.double().sum(0)
            self.total = summed if self.total is None else self.total + summed
        self.n += len(target)

    def prediction(self) -> torch.Tensor:
        if self.task == "classification":
            return (self.counts + 1) / (self.counts.sum() + self.num_outputs)
        return self.total / max(self.n, 1)

    def state(self) -> list:
        return self.prediction().tolist()


class Evaluation:
    """Sums over a pass of the validation split: the model's loss and metrics and, when
    a prior is given, the chance level's."""

    def __init__(self, task: str, loss: Callable, prior: torch.Tensor | None,
                 device: torch.device):
        self.task, self.loss, self.device = task, loss, device
        self.prior = None if prior is None else prior.to(device)
        zero = torch.zeros((), device=device, dtype=torch.float64)
        self.loss_sum, self.correct, self.abs_sum, self.sq_sum = zero, zero, zero, zero
        self.chance_loss_sum, self.chance_correct = zero, zero
        self.target_sq_sum = zero  # sum of (y - training mean)^2: R²'s denominator
        self.rows = self.elements = 0

    def add(self, output: torch.Tensor, target: torch.Tensor) -> None:
        output = aligned(output, target, self.task).float()
        self.rows += len(target)
        if self.task == "classification":
            # without label smoothing: a regulariser of training, not of the measure
            self.loss_sum = self.loss_sum + F.cross_entropy(output, target, reduction="sum")
            self.correct = self.correct + (output.argmax(1) == target).sum()
            if self.prior is not None:
                self.chance_loss_sum = self.chance_loss_sum - self.prior.log()[target].sum()
                self.chance_correct = self.chance_correct + (target == self.prior.argmax()).sum()
            return
        self.elements += target.numel()
        self.loss_sum = self.loss_sum + self.loss(output, target, reduction="sum")
        error = output - target
        self.abs_sum = self.abs_sum + error.abs().sum()
        self.sq_sum = self.sq_sum + (error.double() ** 2).sum()
        if self.prior is not None:
            mean = self.prior.to(target.dtype).expand_as(target)
            self.chance_loss_sum = self.chance_loss_sum + self.loss(mean, target, reduction="sum")
            self.target_sq_sum = self.target_sq_sum + ((target - mean).double() ** 2).sum()

    def metrics(self) -> dict[str, float]:
        if self.task == "classification":
            return {"val_loss": self.loss_sum.item() / self.rows,
                    "val_acc": self.correct.item() / self.rows}
        n = max(self.elements, 1)
        r2 = math.nan
        if self.prior is not None and self.target_sq_sum.item() > 0:
            r2 = 1.0 - self.sq_sum.item() / self.target_sq_sum.item()
        return {"val_loss": self.loss_sum.item() / n, "val_mae": self.abs_sum.item() / n,
                "val_r2": r2}

    def chance(self) -> dict[str, float | None]:
        if self.task == "classification":
            return {"chance_val_loss": self.chance_loss_sum.item() / self.rows,
                    "chance_val_acc": self.chance_correct.item() / self.rows}
        return {"chance_val_loss": self.chance_loss_sum.item() / max(self.elements, 1),
                "chance_val_acc": None}
