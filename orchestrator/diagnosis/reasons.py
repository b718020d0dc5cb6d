"""What a diagnosis says: its label and a one-line reason with the numbers that decided it."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.states import Label

LABELS = tuple(Label)  # orchestrator/states.py names them

# What the practice does about the two read from the training's own signals
# (../shared/TUNING.md, "Reading the training itself"): too much depth for the net as it
# is; the fixes are structural, not a rate
ADVICE = {
    Label.VANISHING_GRADIENTS: ("no learning rate fixes that: normalisation (batch or "
                                "layer norm), residual connections, a shallower net or a "
                                "better initialisation"),
    Label.EXPLODING_GRADIENTS: "clip the gradients and lower the rate",
}


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
