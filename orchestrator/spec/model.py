"""Sweep specs: YAML -> validated, frozen `SweepSpec` objects.

This is the only place user input is trusted. Every error becomes a `SpecError`
naming the file (or --set option), the dotted key and what is wrong.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from orchestrator.distributions import CONTINUOUS, Distribution
from orchestrator.dotted import has_dotted, set_dotted
from orchestrator.errors import SpecError
from orchestrator.messages import RuleError, describe, dotted, raise_from
from orchestrator.registry import Registered
from orchestrator.schedulers import SCHEDULERS
from orchestrator.searchers import SEARCHERS
from orchestrator.trainable.config import Metric, Mode, TrainConfig


class SpecLoader(yaml.SafeLoader):
    """yaml.SafeLoader (no python tags, no code) that also reads `1e-3` as a float.

    PyYAML follows YAML 1.1, where a float needs a dot; YAML 1.2 and every user mean
    `1e-3` as a number. The extra implicit resolver applies to plain scalars only, so
    a quoted "1e5" stays a string.
    """


# copy the resolver table (its lists too) so that yaml.SafeLoader itself is untouched
SpecLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def safe_load(text: str) -> Any:
    """Parse YAML with `SpecLoader` (safe: no python tags, no code)."""
    return yaml.load(text, Loader=SpecLoader)  # noqa: S506 - SpecLoader is a SafeLoader


MAXIMISED = {"val_acc": True, "val_loss": False, "train_loss": False}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _registered_union(registry: dict[str, Registered]) -> Any:
    """The registry's option models as one union, told apart by `name`."""
    return Annotated[Union[tuple(entry.options for entry in registry.values())],  # noqa: UP007
                     Field(discriminator="name")]


SchedulerSpec = _registered_union(SCHEDULERS)
SearcherSpec = _registered_union(SEARCHERS)


def _component(value: Any, registry: dict[str, Registered]) -> Any:
    """`{name: X, **options}`, the registry's first entry when the name is left out."""
    if value is None:
        return {"name": next(iter(registry))}
    if isinstance(value, BaseModel):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping like {{name: ...}}, got {value!r}")
    return {"name": next(iter(registry)), **value}


class Resources(_Strict):
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)


class Failure(_Strict):
    max_failures: int = Field(0, ge=-1, description="retries of a failing trial; -1 = forever")


class SweepSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=128)
    metric: Metric = "val_acc"
    mode: Mode = "max"  # filled in from the metric when omitted
    num_samples: int = Field(1, ge=1)
    max_concurrent_trials: int | None = Field(None, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    seed: int = Field(0, ge=0, lt=2**32)
    train: TrainConfig = TrainConfig()
    search_space: dict[str, Distribution] = {}
    scheduler: SchedulerSpec = SCHEDULERS["asha"].options()
    searcher: SearcherSpec = SEARCHERS["random"].options()
    resources: Resources = Resources()
    failure: Failure = Failure()
    storage: str = "./sweeps"

    @model_validator(mode="before")
    @classmethod
    def _default_mode(cls, data: Any) -> Any:
        # the mode follows from the metric when it is left out
        if isinstance(data, dict) and data.get("mode") is None:
            metric = data.get("metric", "val_acc")
            if isinstance(metric, str) and metric in MAXIMISED:
                data = {**data, "mode": "max" if MAXIMISED[metric] else "min"}
        return data

    @field_validator("mode")
    @classmethod
    def _mode_agrees_with_metric(cls, mode: str, info: ValidationInfo) -> str:
        metric = info.data.get("metric")
        if metric in MAXIMISED:
            expected = "max" if MAXIMISED[metric] else "min"
            if mode != expected:
                raise ValueError(f"is {mode!r}, but metric {metric!r} needs {expected!r}")
        return mode

    @field_validator("scheduler", mode="before")
    @classmethod
    def _scheduler_name(cls, value: Any) -> Any:
        return _component(value, SCHEDULERS)

    @field_validator("searcher", mode="before")
    @classmethod
    def _searcher_name(cls, value: Any) -> Any:
        return _component(value, SEARCHERS)

    @model_validator(mode="after")
    def _search_space_fits_the_trainable(self) -> SweepSpec:
        train = self.train.model_dump(mode="json")
        for key, dist in self.search_space.items():
            problem = _leaf_path_error(key)
            if problem:
                raise RuleError(f"search_space.{key}", problem)
            for value in dist.representatives():
                trial = copy.deepcopy(train)
                set_dotted(trial, key, value)
                try:
                    TrainConfig.model_validate(trial)
                except ValidationError as exc:
                    error = exc.errors()[0]
                    raise RuleError(
                        f"search_space.{key}",
                        f"value {value!r} is invalid for train.{dotted(error['loc'])}: "
                        f"{describe(error)}",
                    ) from None
        return self

    @model_validator(mode="after")
    def _components_fit_together(self) -> SweepSpec:
        """Rules between the search space, the searcher and the scheduler."""
        space, scheduler = self.search_space, self.scheduler
        if self.searcher.name == "grid":
            others = [k for k, d in space.items() if d.kind != "grid"]
            if others:
                raise RuleError(f"search_space.{others[0]}",
                                f"is {space[others[0]].kind}, "
                                "but searcher 'grid' takes only grid keys")
        if self.searcher.name == "optuna" and self.grid_keys:
            raise RuleError(f"search_space.{self.grid_keys[0]}",
                            "is a grid, which searcher 'optuna' cannot take: use choice")
        if scheduler.name == "asha" and scheduler.grace_period > (
                scheduler.max_t or self.max_epochs):
            limit = (f"max_t ({scheduler.max_t})" if scheduler.max_t
                     else f"train.epochs ({self.max_epochs})")
            raise RuleError("scheduler.grace_period",
                            f"is {scheduler.grace_period}, but must be <= {limit}")
        if scheduler.name == "pbt":
            if not any(d.kind in CONTINUOUS for d in space.values()):
                raise RuleError("scheduler.name",
                                "'pbt' perturbs continuous keys, but search_space has none "
                                "(uniform, loguniform or quniform)")
            if self.searcher.name == "optuna":
                raise RuleError("searcher.name", "'optuna' cannot drive 'pbt': use random")
        return self

    # -- derived ---------------------------------------------------------
    @property
    def grid_keys(self) -> list[str]:
        return [k for k, d in self.search_space.items() if d.kind == "grid"]

    @property
    def grid_size(self) -> int:
        return math.prod(len(self.search_space[k].args) for k in self.grid_keys)

    @property
    def trial_count(self) -> int:
        return self.num_samples * self.grid_size

    @property
    def max_epochs(self) -> int:
        dist = self.search_space.get("epochs")
        return max(dist.representatives()) if dist else self.train.epochs

    def resolved(self) -> dict:
        """The spec as plain data, every default filled in (for sweep.json); it loads
        back into the same spec."""
        data = self.model_dump(mode="json")
        data["search_space"] = {k: {d.kind: list(d.args)} for k, d in self.search_space.items()}
        return data


# -- loading ---------------------------------------------------------------

def _leaf_path_error(key: str) -> str | None:
    """None when `key` names a setting of the trainable, else why it does not."""
    model: type[BaseModel] = TrainConfig
    parts = key.split(".")
    for i, part in enumerate(parts):
        fields = model.model_fields
        if part not in fields:
            where = "train" + "".join(f".{p}" for p in parts[:i])
            return f"names no setting of the trainable ({where} has: {', '.join(sorted(fields))})"
        annotation = fields[part].annotation
        nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if i < len(parts) - 1 and not nested:
            return f"names no setting of the trainable ({part} has no sub-keys)"
        if i == len(parts) - 1 and nested:
            keys = "|".join(sorted(annotation.model_fields))
            return f"names a section, not a setting; search one of its keys ({part}.{keys})"
        model = annotation
    return None


def parse_override(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` from --set; VALUE is YAML (so `0.1`, `[1, 2]`, `{choice: [a]}` work)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or not re.fullmatch(r"[A-Za-z0-9_.]+", key):
        raise SpecError("--set", text, "must look like KEY=VALUE with a dotted KEY")
    try:
        return key, safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise SpecError("--set", key, f"value is not valid YAML: {exc}") from None


def apply_overrides(data: dict, overrides: list[tuple[str, Any]]) -> dict:
    """Set dotted keys; `search_space.<key>` keeps the rest of its dots in one key."""
    data = copy.deepcopy(data)
    for key, value in overrides:
        if key.startswith("search_space."):
            data.setdefault("search_space", {})
            if not isinstance(data["search_space"], dict):
                data["search_space"] = {}
            data["search_space"][key.removeprefix("search_space.")] = value
        else:
            set_dotted(data, key, value)
    return data


DATA_PATH_KEYS = ("path", "root")


def _absolute(value: Any) -> Any:
    return str(Path(value).expanduser().absolute()) if isinstance(value, str) and value else value


def _absolute_data_paths(train: dict, space: dict) -> tuple[dict, dict]:
    """Trials run in other processes and folders: data paths, fixed or searched, are
    made absolute against the folder `sweep` runs in."""
    dataset = train.get("dataset")
    if isinstance(dataset, dict):
        train = {**train, "dataset": {k: _absolute(v) if k in DATA_PATH_KEYS else v
                                      for k, v in dataset.items()}}
    space = dict(space)
    for key in (f"dataset.{k}" for k in DATA_PATH_KEYS):
        raw = space.get(key)
        if isinstance(raw, Mapping) and len(raw) == 1:
            (kind, values), = raw.items()
            if kind in ("choice", "grid") and isinstance(values, list):
                space[key] = {kind: [_absolute(v) for v in values]}
    return train, space


def spec_from_mapping(data: Any, source: str = "<spec>") -> SweepSpec:
    """Validate a mapping (already parsed YAML) into a `SweepSpec`."""
    if not isinstance(data, Mapping):
        raise SpecError(source, "", f"must be a mapping of keys, got {type(data).__name__}")
    data = dict(data)
    for key in data:
        if not isinstance(key, str):
            raise SpecError(source, str(key), "keys must be strings")
    space = data.get("search_space") or {}
    if not isinstance(space, Mapping):
        raise SpecError(source, "search_space", f"must be a mapping of dotted keys, got {space!r}")
    train = data.get("train") or {}
    if not isinstance(train, Mapping):
        raise SpecError(source, "train", f"must be a mapping, got {train!r}")
    train, space = _absolute_data_paths(dict(train), dict(space))
    # the train section must be valid once searched keys it lacks are filled in
    base = copy.deepcopy(dict(train))
    filled: dict[str, Any] = {}
    for key, raw in space.items():
        if not isinstance(key, str):
            raise SpecError(source, f"search_space.{key}", "keys must be strings")
        try:
            first = Distribution.model_validate(raw).representatives()[0]
        except ValidationError as exc:
            raise_from(exc, source, ("search_space", key), Distribution)
        if _leaf_path_error(key) is None and not has_dotted(base, key):
            set_dotted(base, key, first)
            filled[key] = first
    # keep the fixed values as written (defaults where absent) when they validate alone
    try:
        TrainConfig.model_validate(train)
        data["train"] = dict(train)
    except ValidationError:
        data["train"] = base
    data["search_space"] = dict(space)
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        try:
            raise_from(exc, source, (), SweepSpec)
        except SpecError as err:
            searched = err.key.removeprefix("train.")
            if searched in filled:
                raise SpecError(
                    source, f"search_space.{searched}",
                    f"value {filled[searched]!r} is invalid for {err.key}: {err.problem}",
                ) from None
            raise
    return spec


def load_spec(path: str | Path, overrides: list[str] = ()) -> SweepSpec:
    """Read a YAML spec (yaml.safe_load only) and apply `--set KEY=VALUE` overrides."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(source, "", f"cannot be read: {exc.strerror or exc}") from None
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", exc)
        raise SpecError(source, "", f"is not valid YAML: {where}{problem}") from None
    if data is None:
        raise SpecError(source, "", "is empty")
    parsed = [parse_override(o) for o in overrides]
    if parsed:
        if not isinstance(data, Mapping):
            raise SpecError(source, "", f"must be a mapping of keys, got {type(data).__name__}")
        data = apply_overrides(dict(data), parsed)
        # blame --set for errors in keys it set
        try:
            return spec_from_mapping(data, source)
        except SpecError as err:
            for key, _ in parsed:
                if err.key == key or err.key.startswith(key + "."):
                    raise SpecError("--set", err.key, err.problem) from None
            raise
    return spec_from_mapping(data, source)
