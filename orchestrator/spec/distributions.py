"""Search-space distributions as written in a spec: `{kind: [args...]}`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import model_validator

from orchestrator.errors import shown
from orchestrator.spec.strict import Strict

DISTRIBUTIONS = ("uniform", "loguniform", "quniform", "randint", "lograndint", "choice", "grid")
CONTINUOUS = ("uniform", "loguniform", "quniform")



class Distribution(Strict):
    """One search-space entry, written in YAML as `{kind: [args...]}`.

    `randint` and `lograndint` are inclusive at both ends.
    """

    kind: Literal["uniform", "loguniform", "quniform", "randint", "lograndint", "choice", "grid"]
    args: tuple[Any, ...]

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and set(value) != {"kind", "args"}:
            if len(value) != 1:
                raise ValueError(
                    f"must be one mapping like {{loguniform: [1e-4, 0.1]}}, one of: "
                    f"{', '.join(DISTRIBUTIONS)}"
                )
            (kind, args), = value.items()
            if kind not in DISTRIBUTIONS:
                raise ValueError(
                    f"unknown distribution {kind!r}; known: {', '.join(DISTRIBUTIONS)}"
                )
            if not isinstance(args, list | tuple):
                raise ValueError(f"{kind} takes a list, got {shown(args)}")
            return {"kind": kind, "args": tuple(args)}
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a mapping like {{choice: [32, 64]}}, got {shown(value)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> Distribution:
        kind, args = self.kind, self.args
        if kind in ("choice", "grid"):
            if not args:
                raise ValueError(f"{kind} needs at least one value")
            return self
        arity = 3 if kind == "quniform" else 2
        if len(args) != arity:
            form = "[low, high, q]" if arity == 3 else "[low, high]"
            raise ValueError(f"{kind} takes {form}, got {list(args)}")
        numbers = all(isinstance(a, int | float) and not isinstance(a, bool) for a in args)
        if not numbers or not all(math.isfinite(a) for a in args):
            raise ValueError(f"{kind} bounds must be finite numbers, got {list(args)}")
        low, high = args[0], args[1]
        if kind in ("randint", "lograndint"):
            if not all(isinstance(a, int) for a in args):
                raise ValueError(f"{kind} bounds must be integers, got {list(args)}")
            if low > high:
                raise ValueError(f"{kind} low {low} is above high {high}")
        elif low >= high:
            raise ValueError(f"{kind} low {low} must be below high {high}")
        if kind in ("loguniform", "lograndint") and low <= 0:
            raise ValueError(f"{kind} low is {low}, but must be > 0")
        if kind == "quniform" and args[2] <= 0:
            raise ValueError(f"quniform q is {args[2]}, but must be > 0")
        return self

    def representatives(self) -> list[Any]:
        """Values that stand for the whole domain when validating: its ends or members."""
        if self.kind in ("choice", "grid"):
            return list(self.args)
        return [self.args[0], self.args[1]]
