"""Batch-size scaling of the learning rate: the ONE place it is computed.

docs/tuning.md: when the batch grows k times, the rate grows sqrt(k) times (square-root
rule) or k times (linear rule, usually with warmup).
"""

from __future__ import annotations

from orchestrator.spec.settings import BatchScalingConfig

EXPONENTS = {"none": 0.0, "linear": 1.0, "sqrt": 0.5}


def effective_lr(lr: float, batch_size: int, scaling: BatchScalingConfig) -> float:
    """lr * (batch_size / reference_batch_size) ** p, p = 0, 1 or 0.5 by rule."""
    p = EXPONENTS[scaling.rule]
    return lr * (batch_size / scaling.reference_batch_size) ** p
