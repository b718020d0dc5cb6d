"""Declarative hyperparameter sweeps of PyTorch models on Ray Tune."""

from orchestrator.errors import OrchestratorError, SpecError
from orchestrator.spec import SweepSpec, load_spec

__all__ = ["OrchestratorError", "SpecError", "SweepSpec", "load_spec"]
