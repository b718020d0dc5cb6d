"""Search-space distributions as written in a spec: `{kind: [args...]}`."""

from __future__ import annotations

import json
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

    def member(self, value: Any) -> tuple[bool, Any]:
        """(whether `value` is one the domain can draw, the value as the domain holds it).
        Integer keys take integers (3.0 is 3, 3.5 is not); a `quniform` value lies on its
        grid of q from low; a choice is matched by value and kind (True is not 1), a list
        member also by its JSON text (lists are JSON text in the tables)."""
        if hasattr(value, "item") and not isinstance(value, list | tuple | str):
            value = value.item()  # a numpy scalar, as a table holds it
        if value is None or isinstance(value, float) and math.isnan(value):
            return False, None
        if self.kind in ("choice", "grid"):
            for arg in self.args:
                if _same(arg, value):
                    return True, arg
            return False, None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False, None
        low, high = self.args[0], self.args[1]
        if self.kind in ("randint", "lograndint"):
            if value != int(value):
                return False, None
            value = int(value)
        else:
            value = float(value)
        if not low <= value <= high:
            return False, None
        if self.kind == "quniform":
            steps = (value - low) / self.args[2]
            if abs(steps - round(steps)) > 1e-9 * max(1.0, abs(steps)):
                return False, None
        return True, value


def _same(arg: Any, value: Any) -> bool:
    """A choice member and a value read back from a table: equal and of one kind."""
    if isinstance(arg, list | tuple):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return False
        return isinstance(value, list | tuple) and list(value) == list(arg)
    if isinstance(arg, bool) or isinstance(value, bool):
        return isinstance(arg, bool) and isinstance(value, bool) and arg == value
    if isinstance(arg, int | float) and isinstance(value, int | float):
        return arg == value
    return type(arg) is type(value) and arg == value
