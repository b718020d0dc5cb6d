"""What the scheduler and searcher registries share: option models and a build context.

A registry entry needs only its own options and a few facts about the sweep (the
`BuildContext`), not the whole spec: so the spec can import the registries for their
option models without an import circle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict


class Options(BaseModel):
    """Options of one registered component; `name` is the registry key (the tag of
    the spec's discriminated union)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def options(self) -> dict[str, Any]:
        """The options without the name."""
        return self.model_dump(exclude={"name"})


@dataclass(frozen=True)
class BuildContext:
    """The facts about a sweep that schedulers and searchers are built from."""

    seed: int
    max_epochs: int
    max_concurrent_trials: int | None = None
    # PBT: the continuous searched keys as Tune domains, nested as in the trial config
    mutations: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Registered:
    options: type[Options]
    factory: Callable[[Any, BuildContext], Any]
    summary: str
    # schedulers that pause trials or hand one trial's weights to another continue them
    # from a checkpoint: their trials checkpoint every epoch unless the spec says otherwise
    needs_checkpoints: bool = False
