"""What the scheduler and searcher registries share: an options model per component.

The spec holds the option models (and validates them); the engine holds the factories
that turn validated options into Ray Tune objects (`orchestrator.engine.schedulers`,
`orchestrator.engine.searchers`), keyed by the same names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.spec.strict import Strict


class Options(Strict):
    """Options of one registered component; `name` is the registry key (the tag of
    the spec's discriminated union)."""

    def options(self) -> dict[str, Any]:
        """The options without the name."""
        return self.model_dump(exclude={"name"})


@dataclass(frozen=True)
class Component:
    options: type[Options]
    summary: str
    # schedulers that pause trials or hand one trial's weights to another continue them
    # from a checkpoint: their trials checkpoint every epoch unless the spec says otherwise
    needs_checkpoints: bool = False
