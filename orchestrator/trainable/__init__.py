"""The shared PyTorch trainable that every trial runs."""

from orchestrator.trainable.config import TrainConfig, TrialConfig
from orchestrator.trainable.diagnose import diagnose
from orchestrator.trainable.scaling import effective_lr
from orchestrator.trainable.schedules import lr_at
from orchestrator.trainable.trainer import Trainer

__all__ = ["TrainConfig", "TrialConfig", "Trainer", "diagnose", "effective_lr", "lr_at"]
