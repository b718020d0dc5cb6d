"""Batch-size scaling of the learning rate: the ONE place it is computed.

docs/tuning.md: when the batch grows k times, the rate grows sqrt(k) times (square-root
rule) or k times (linear rule, usually with warmup). A batch that memory forced down
(the trainer's out-of-memory halving) is converted here too.
"""

from __future__ import annotations

from orchestrator.spec.settings import BatchScalingConfig

EXPONENTS = {"none": 0.0, "linear": 1.0, "sqrt": 0.5}
# the rule a batch forced down by memory follows when the spec's rule is none
MEMORY_RULE = "sqrt"


def effective_lr(lr: float, batch_size: int, scaling: BatchScalingConfig,
                 asked: int | None = None) -> float:
    """lr * (batch_size / reference_batch_size) ** p, p = 0, 1 or 0.5 by rule.

    `asked`: the batch the trial asked for when memory made it run at the smaller
    `batch_size`. Under rule none the spec's rate belongs to the batch asked for, and the
    smaller batch takes it by the square-root rule, lr * (batch_size / asked) ** 0.5
    (docs/tuning.md: a batch that does not fit is not a bad setting; take a smaller one
    and scale the rate by sqrt(k)); under sqrt or linear the rule itself says it."""
    if asked is not None and batch_size != asked and scaling.rule == "none":
        return lr * (batch_size / asked) ** EXPONENTS[MEMORY_RULE]
    p = EXPONENTS[scaling.rule]
    return lr * (batch_size / scaling.reference_batch_size) ** p
