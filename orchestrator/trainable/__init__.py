"""The shared PyTorch trainable that every trial runs.

The settings models load without torch (validating a spec stays fast); the
torch-backed parts load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from orchestrator.trainable.config import TrainConfig, TrialConfig

_LAZY = {
    "Trainer": "orchestrator.trainable.trainer",
    "effective_lr": "orchestrator.trainable.scaling",
    "lr_at": "orchestrator.trainable.schedules",
}

__all__ = ["TrainConfig", "TrialConfig", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
