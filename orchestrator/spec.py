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
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.distributions import CONTINUOUS, Distribution
from orchestrator.dotted import has_dotted, set_dotted
from orchestrator.errors import SpecError
from orchestrator.messages import describe, dotted, raise_from
from orchestrator.schedulers import SCHEDULERS, Registered
from orchestrator.searchers import SEARCHERS
from orchestrator.trainable.config import Metric, Mode, TrainConfig

# PyYAML follows YAML 1.1, where `1e-3` (no dot) is a string; YAML 1.2 and every
# user mean a float. Such strings are read back as floats after yaml.safe_load.
_EXPONENT_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+")


def _exponent_floats(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _exponent_floats(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_exponent_floats(v) for v in data]
    if isinstance(data, str) and _EXPONENT_FLOAT.fullmatch(data):
        return float(data)
    return data


def safe_load(text: str) -> Any:
    """yaml.safe_load (no python tags, no code), with `1e-3` read as a float."""
    return _exponent_floats(yaml.safe_load(text))


MAXIMISED = {"val_acc": True, "val_loss": False, "train_loss": False}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Component(_Strict):
    """`{name: X, **options}` where options are checked by the registry entry of X."""

    name: str
    options: Any = None


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
    scheduler: _Component = _Component(name="asha")
    searcher: _Component = _Component(name="random")
    resources: Resources = Resources()
    failure: Failure = Failure()
    storage: str = "./sweeps"

    @model_validator(mode="before")
    @classmethod
    def _default_mode(cls, data: Any) -> Any:
        # the mode follows from the metric; an explicit one must agree with it
        if isinstance(data, dict) and data.get("mode") is None:
            metric = data.get("metric", "val_acc")
            if isinstance(metric, str) and metric in MAXIMISED:
                data = {**data, "mode": "max" if MAXIMISED[metric] else "min"}
        return data


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
        """The spec as plain data, every default filled in (for sweep.json)."""
        data = self.model_dump(mode="json")
        data["search_space"] = {k: {d.kind: list(d.args)} for k, d in self.search_space.items()}
        for part in ("scheduler", "searcher"):
            data[part] = {"name": getattr(self, part).name,
                          **getattr(self, part).options.model_dump(mode="json")}
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


def _component(raw: Any, section: str, registry: dict[str, Registered], source: str) -> dict:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise SpecError(source, section, f"must be a mapping like {{name: ...}}, got {raw!r}")
    options = dict(raw)
    name = options.pop("name", next(iter(registry)))
    if not isinstance(name, str) or name not in registry:
        raise SpecError(source, f"{section}.name",
                        f"is {name!r}, but must be one of: {', '.join(registry)}")
    try:
        parsed = registry[name].options.model_validate(options)
    except ValidationError as exc:
        raise_from(exc, source, (section,), registry[name].options)
    return {"name": name, "options": parsed}


def _check_search_space(spec: SweepSpec, train: dict, source: str) -> None:
    for key, dist in spec.search_space.items():
        problem = _leaf_path_error(key)
        if problem:
            raise SpecError(source, f"search_space.{key}", problem)
        for value in dist.representatives():
            trial = copy.deepcopy(train)
            set_dotted(trial, key, value)
            try:
                TrainConfig.model_validate(trial)
            except ValidationError as exc:
                error = exc.errors()[0]
                raise SpecError(
                    source, f"search_space.{key}",
                    f"value {value!r} is invalid for train.{dotted(error['loc'])}: "
                    f"{describe(error)}",
                ) from None


def _check_components(spec: SweepSpec, source: str) -> None:
    """Rules between the search space, the searcher and the scheduler."""
    if spec.searcher.name == "grid":
        others = [k for k, d in spec.search_space.items() if d.kind != "grid"]
        if others:
            raise SpecError(source, f"search_space.{others[0]}",
                            f"is {spec.search_space[others[0]].kind}, "
                            "but searcher 'grid' takes only grid keys")
    if spec.searcher.name == "optuna" and spec.grid_keys:
        raise SpecError(source, f"search_space.{spec.grid_keys[0]}",
                        "is a grid, which searcher 'optuna' cannot take: use choice")
    options = spec.scheduler.options
    grace, max_t = getattr(options, "grace_period", None), getattr(options, "max_t", None)
    if grace is not None and spec.scheduler.name == "asha" and grace > (max_t or spec.max_epochs):
        limit = f"max_t ({max_t})" if max_t else f"train.epochs ({spec.max_epochs})"
        raise SpecError(source, "scheduler.grace_period", f"is {grace}, but must be <= {limit}")
    if spec.scheduler.name == "pbt":
        if not any(d.kind in CONTINUOUS for d in spec.search_space.values()):
            raise SpecError(source, "scheduler.name",
                            "'pbt' perturbs continuous keys, but search_space has none "
                            "(uniform, loguniform or quniform)")
        if spec.searcher.name == "optuna":
            raise SpecError(source, "searcher.name", "'optuna' cannot drive 'pbt': use random")


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
    for section, registry in (("scheduler", SCHEDULERS), ("searcher", SEARCHERS)):
        data[section] = _component(data.get(section), section, registry, source)
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
    metric, mode = data.get("metric", "val_acc"), data.get("mode")
    if isinstance(metric, str) and metric in MAXIMISED and mode is not None:
        expected = "max" if MAXIMISED[metric] else "min"
        if mode != expected:
            raise SpecError(source, "mode",
                            f"is {mode!r}, but metric {metric!r} needs {expected!r}")
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
    _check_search_space(spec, base, source)
    _check_components(spec, source)
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
