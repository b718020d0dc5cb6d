"""What a diagnosis says: its label and a one-line reason with the numbers that decided it."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.states import Label

LABELS = tuple(Label)  # orchestrator/states.py names them


@dataclass(frozen=True)
class Diagnosis:
    label: str
    reason: str


def num(value: float) -> str:
    return f"{value:.3g}"


def pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def ratio(value: float) -> str:
    """A ratio as a percentage, or as a multiple when it is large."""
    return pct(value) if value < 10 else f"{value:.3g}x"
