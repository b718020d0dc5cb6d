"""What both renderings of the curves (PNG and interactive) mark: how each trial ended,
as its colour, and the epochs at which ASHA judged the trials."""

from __future__ import annotations

from typing import Any

STOP_COLOURS = {"completed": "#2b8a3e", "early_stopping": "#1971c2", "scheduler": "#e8590c",
                "diverged": "#c92a2a", "error": "#862e9c", "budget": "#868e96"}
UNFINISHED_COLOUR = "#adb5bd"


def asha_rungs(spec: dict[str, Any]) -> list[int]:
    """The epochs at which ASHA judged trials (none for other schedulers)."""
    options = spec.get("scheduler", {})
    if options.get("name") != "asha":
        return []
    grace, factor = options.get("grace_period", 1), options.get("reduction_factor", 3)
    max_t = options.get("max_t") or spec["train"]["epochs"]
    rungs, k = [], 0
    while grace * factor**k < max_t:
        rungs.append(int(grace * factor**k))
        k += 1
    return rungs
