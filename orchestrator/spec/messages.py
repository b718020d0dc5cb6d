"""Pydantic validation errors as one line: the dotted key, then `is X, but must be Y`."""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel, ValidationError

from orchestrator.errors import SpecError, shown
from orchestrator.spec.settings import BUILTIN, USER, tagged_members
from orchestrator.spec.user_code import REF_PATTERN

# a sweep's name is its folder's name and is typed in commands (`sweep resume NAME`)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
METRIC_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*$"
# what a pattern asks, in words, and why
PATTERN_RULES = {
    NAME_PATTERN: "must begin with a letter or digit, then letters, digits, '.', '_' or '-' "
                  "(it names the sweep's folder and is typed in commands: a leading '-' "
                  "would read as an option, a leading '.' would hide the folder; spaces, "
                  "'/' and other characters are not safe in a folder name)",
    METRIC_PATTERN: "must begin with a letter or '_', then letters, digits, '_' or '.' (the "
                    "name a trial reports the metric under)",
    REF_PATTERN: "must name a callable as 'module:attr' (my_models:build)",
}


class RuleError(ValueError):
    """A rule between fields, raised inside a model validator, that blames `key` (dotted,
    relative to the model). Pydantic keeps the exception in the error's ctx."""

    def __init__(self, key: str, problem: str):
        super().__init__(problem)
        self.key = key


def dotted(loc: tuple) -> str:
    """A pydantic location as the dotted key the user wrote (union tags left out)."""
    return ".".join(str(p) for p in loc if p not in (BUILTIN, USER))


def describe(error: dict) -> str:
    """A pydantic error as `is X, but must be Y` (the Optuna style)."""
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
              "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        limit = f"{limit:g}" if isinstance(limit, float) else limit
        return f"is {shown(value)}, but must be {bounds[kind]} {limit}"
    if kind == "extra_forbidden":
        return "is not a known key"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        return f"is {shown(value)}, but must be one of {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        rule = PATTERN_RULES.get(ctx.get("pattern"), f"must match {ctx.get('pattern')}")
        return f"is {shown(value)}, but {rule}"
    if kind == "union_tag_invalid":
        expected = ctx["expected_tags"].replace("'", "")
        return f"is {ctx['tag']!r}, but must be one of: {expected}"
    message = error["msg"]
    message = message.removeprefix("Value error, ")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"is {shown(value)}: {message[0].lower() + message[1:]}"
    return message


def _walk(model: type[BaseModel], loc: tuple) -> tuple[tuple, type[BaseModel] | None]:
    """`loc` without the tags pydantic inserts for discriminated unions, and the model
    that holds its last key (None when that is not a model)."""
    clean: list = []
    current: type[BaseModel] | None = model
    parent = model
    i = 0
    while i < len(loc):
        part = loc[i]
        clean.append(part)
        parent = current
        field = current.model_fields.get(str(part)) if current else None
        current = None
        if field is not None:
            annotation = field.annotation
            optional = [a for a in get_args(annotation) if a is not type(None)]
            if len(optional) == 1 and len(get_args(annotation)) == 2:  # `Model | None`
                annotation = optional[0]
            tagged = tagged_members(annotation)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                current = annotation
            elif tagged and i + 1 < len(loc) and loc[i + 1] in tagged:
                current = tagged[loc[i + 1]]
                i += 1  # the tag (built-in or a user's factory) is not a key either
            elif isinstance(field.discriminator, str) and i + 1 < len(loc):
                members = {m.model_fields[field.discriminator].default: m
                           for m in get_args(annotation)}
                if loc[i + 1] in members:
                    current = members[loc[i + 1]]
                    i += 1  # the tag is not a key the user wrote
        i += 1
    return tuple(clean), parent


def known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys allowed next to the unknown key at `loc` (walking nested models)."""
    _, parent = _walk(model, loc)
    # a key as the user writes it: its alias (`from`) where it has one
    return sorted(f.alias or name for name, f in parent.model_fields.items()) if parent else []


def raise_from(exc: ValidationError, source: str, prefix: tuple, model: type[BaseModel]) -> None:
    error = exc.errors()[0]
    raw = tuple(p for p in error["loc"] if p not in ("function-after", "function-before"))
    loc, _ = _walk(model, raw)
    problem = describe(error)
    rule = error.get("ctx", {}).get("error")
    if isinstance(rule, RuleError):
        loc = loc + (rule.key,) if rule.key else loc
    elif error["type"] == "union_tag_invalid":
        loc = loc + (error["ctx"]["discriminator"].strip("'"),)
    elif error["type"] == "extra_forbidden":
        known = known_keys(model, raw)
        if known:
            problem += f" (known: {', '.join(known)})"
    raise SpecError(source, dotted(prefix + loc), problem) from None
