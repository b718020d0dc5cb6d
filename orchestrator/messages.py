"""Pydantic validation errors as one line: the dotted key, then `is X, but must be Y`."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from orchestrator.errors import SpecError


def dotted(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def describe(error: dict) -> str:
    """A pydantic error as `is X, but must be Y` (the Optuna style)."""
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
              "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        limit = f"{limit:g}" if isinstance(limit, float) else limit
        return f"is {value!r}, but must be {bounds[kind]} {limit}"
    if kind == "extra_forbidden":
        return "is not a known key"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        return f"is {value!r}, but must be one of {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        return f"is {value!r}, but must be letters, digits, '.', '_' or '-'"
    message = error["msg"]
    message = message.removeprefix("Value error, ")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"is {value!r}: {message[0].lower() + message[1:]}"
    return message


def known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys allowed next to the unknown key at `loc` (walking nested models)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def raise_from(exc: ValidationError, source: str, prefix: tuple, model: type[BaseModel]) -> None:
    error = exc.errors()[0]
    loc = tuple(p for p in error["loc"] if p not in ("function-after", "function-before"))
    problem = describe(error)
    if error["type"] == "extra_forbidden":
        known = known_keys(model, loc)
        if known:
            problem += f" (known: {', '.join(known)})"
    raise SpecError(source, dotted(prefix + loc), problem) from None
