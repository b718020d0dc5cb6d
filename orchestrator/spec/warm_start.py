"""The `warm_start:` section: the earlier sweep a sweep starts from.

    warm_start:
      from: digits-mlp-asha   # a sweep's name (looked up in `storage`), or its folder or URI
      storage: ./sweeps       # where that name is looked up; this spec's storage by default
      rerun_best: 1           # the earlier best configurations (inside the new space) run first

`sweep refine` writes it into the spec it writes; `sweep run --warm-start` sets `from`.
Only the section itself is validated here; the earlier sweep is read, and its trials
given to the new sweep's searcher, by engine/warm_start.py (docs/iterate.md)."""

from __future__ import annotations

from pydantic import Field

from orchestrator.spec.strict import Strict


class WarmStart(Strict):
    # `from` is a Python keyword: the field is `source`, written `from` in a spec
    source: str = Field(alias="from", min_length=1, max_length=1000,
                        description="the earlier sweep: its name, folder or URI")
    storage: str | None = Field(None, min_length=1, max_length=2000,
                                description="where its name is looked up (a folder or URI)")
    rerun_best: int = Field(1, ge=0, description="its best configurations, run first")

    def resolved(self) -> dict:
        """As a spec writes it (`from`, not `source`)."""
        return self.model_dump(mode="json", by_alias=True)
