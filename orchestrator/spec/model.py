"""Sweep specs: YAML -> validated, frozen `SweepSpec` objects.

This is the only place user input is trusted. Every error becomes a `SpecError`
naming the file (or --set option), the dotted key and what is wrong.
"""

from __future__ import annotations

import copy
import math
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from orchestrator.errors import SpecError, first_line, shown
from orchestrator.spec.code_check import resolve_code
from orchestrator.spec.credentials import storage_problem
from orchestrator.spec.distributions import CONTINUOUS, Distribution
from orchestrator.spec.dotted import has_dotted, set_dotted
from orchestrator.spec.messages import (
    METRIC_PATTERN,
    NAME_PATTERN,
    RuleError,
    describe,
    dotted,
    raise_from,
)
from orchestrator.spec.registry import Component
from orchestrator.spec.schedulers import SCHEDULERS
from orchestrator.spec.searchers import SEARCHERS
from orchestrator.spec.settings import (
    BUILTIN,
    DEFAULT_STORAGE,
    MODE_OF,
    TASK_METRICS,
    LoopConfig,
    Metric,
    Mode,
    TrainConfig,
    TrainSection,
    UserFactory,
    tagged_members,
)
from orchestrator.spec.strict import Strict
from orchestrator.spec.tracking import Tracking
from orchestrator.spec.warm_start import WarmStart


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


# a spec is a few hundred values; YAML aliases can make a 1 KB file expand to billions
# (the "billion laughs"): nodes past this, aliases expanded, are refused
MAX_EXPANDED_NODES = 100_000
MAX_SPEC_BYTES = 2**20


def _expanded_size(node: yaml.Node, seen: dict[int, int]) -> int:
    """The number of nodes `node` stands for with every alias expanded (memoised: a
    shared node is counted once per use, computed once)."""
    if id(node) in seen:
        return seen[id(node)]
    seen[id(node)] = MAX_EXPANDED_NODES + 1  # a node that contains itself: too big
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, seen) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, seen) + _expanded_size(v, seen) for k, v in node.value)
    seen[id(node)] = size = min(size, MAX_EXPANDED_NODES + 1)
    return size


def safe_load(text: str) -> Any:
    """Parse YAML with `SpecLoader` (safe: no python tags, no code), refusing a document
    that expands past MAX_EXPANDED_NODES nodes."""
    loader = SpecLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_EXPANDED_NODES:
            raise yaml.YAMLError(f"expands to more than {MAX_EXPANDED_NODES:,} values "
                                 "(YAML aliases); a spec is much smaller")
        return loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()




def _registered_union(registry: dict[str, Component]) -> Any:
    """The registry's option models as one union, told apart by `name`."""
    return Annotated[Union[tuple(entry.options for entry in registry.values())],  # noqa: UP007
                     Field(discriminator="name")]


SchedulerSpec = _registered_union(SCHEDULERS)
SearcherSpec = _registered_union(SEARCHERS)


def _component(value: Any, registry: dict[str, Component]) -> Any:
    """`{name: X, **options}`, the registry's first entry when the name is left out."""
    if value is None:
        return {"name": next(iter(registry))}
    if isinstance(value, BaseModel):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping like {{name: ...}}, got {shown(value)}")
    return {"name": next(iter(registry)), **value}


class Resources(Strict):
    """Per trial: `workers` processes (one: today's single process; more: a Ray Train
    worker group training data-parallel, docs/distributed.md), each of `cpu` CPUs and
    `gpu` GPUs, gang-scheduled packed on few nodes or spread over many."""

    workers: int = Field(1, ge=1, le=1024)
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)
    placement: Literal["pack", "spread"] = "pack"


class Failure(Strict):
    max_failures: int = Field(0, ge=-1, description="retries of a failing trial; -1 = forever")


class SweepSpec(Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=128)
    # what the shared trainable reports (Metric), or any metric a user's loop reports
    metric: str = Field("val_acc", pattern=METRIC_PATTERN, max_length=64)
    mode: Mode | None = None  # filled in from the metric when omitted
    num_samples: int = Field(1, ge=1)
    max_concurrent_trials: int | None = Field(None, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    seed: int = Field(0, ge=0, lt=2**32)
    train: TrainSection = TrainConfig()
    search_space: dict[str, Distribution] = {}
    scheduler: SchedulerSpec = SCHEDULERS["asha"].options()
    searcher: SearcherSpec = SEARCHERS["random"].options()
    resources: Resources = Resources()
    failure: Failure = Failure()
    storage: str = DEFAULT_STORAGE
    tracking: Tracking = Tracking()  # MLflow / TensorBoard mirrors of the trials
    # the earlier sweep this one starts from (`sweep refine` writes it); recorded, and
    # used once the warm start is built (spec/warm_start.py)
    warm_start: WarmStart | None = None
    # folders of the user's code, shipped to every trial; absolute once loaded (a spec
    # file's relative ones are read against its folder)
    code: tuple[str, ...] = ()
    # gitignore patterns of files of those folders that must not ship, besides the
    # defaults and the folders' .gitignore (`orchestrator.spec.shipped_code`)
    code_exclude: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _default_metric_and_mode(cls, data: Any) -> Any:
        # the metric follows from the task, and the mode from the metric, when left out
        if not isinstance(data, dict):
            return data
        if data.get("metric") is None:
            train = data.get("train")
            task = train.get("task") if isinstance(train, Mapping) else None
            if isinstance(train, Mapping) and "function" in train:
                task = "loop"  # a user's loop: val_loss unless the spec names its metric
            data = {**data, "metric": TASK_METRICS.get(task or "classification",
                                                       ("val_loss",))[0]}
        if data.get("mode") is None:
            metric = data["metric"]
            if isinstance(metric, str) and metric in MODE_OF:
                data = {**data, "mode": MODE_OF[metric]}
        return data

    @model_validator(mode="after")
    def _metric_fits_the_task(self) -> SweepSpec:
        if isinstance(self.train, LoopConfig):
            if self.mode is None:
                raise RuleError("mode", f"is required: metric {self.metric!r} is your loop's "
                                        "own, so say whether it is better high or low "
                                        "(max or min)")
            epochs = self.train.settings.get("epochs")
            if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
                raise RuleError("train.epochs", f"is {shown(epochs)}, but your loop must "
                                "declare its epochs, an integer >= 1 (schedulers count in "
                                "them)")
            return self
        known = get_args(Metric)
        if self.metric not in known:
            names = ", ".join(repr(m) for m in known[:-1]) + f" or {known[-1]!r}"
            raise RuleError("metric", f"is {self.metric!r}, but must be one of {names}")
        reported = TASK_METRICS[self.train.task]
        if self.metric not in reported:
            raise RuleError("metric", f"is {self.metric!r}, but a {self.train.task} reports "
                                      f"{', '.join(reported)}")
        return self

    @field_validator("mode")
    @classmethod
    def _mode_agrees_with_metric(cls, mode: str, info: ValidationInfo) -> str:
        metric = info.data.get("metric")
        if metric in MODE_OF:
            expected = MODE_OF[metric]
            if mode != expected:
                raise ValueError(f"is {mode!r}, but metric {metric!r} needs {expected!r}")
        return mode

    @field_validator("storage")
    @classmethod
    def _no_credentials_in_storage(cls, storage: str) -> str:
        problem = storage_problem(storage)
        if problem:
            raise ValueError(problem)
        return storage

    @field_validator("scheduler", mode="before")
    @classmethod
    def _scheduler_name(cls, value: Any) -> Any:
        return _component(value, SCHEDULERS)

    @field_validator("searcher", mode="before")
    @classmethod
    def _searcher_name(cls, value: Any) -> Any:
        return _component(value, SEARCHERS)

    @model_validator(mode="after")
    def _cuda_needs_a_gpu(self) -> SweepSpec:
        if getattr(self.train, "device", None) == "cuda" and not self.resources.gpu:
            raise RuleError("train.device", "is 'cuda', but resources.gpu is 0: give each "
                            "trial a GPU (e.g. resources: {gpu: 0.5}) or use device auto")
        return self

    @model_validator(mode="after")
    def _batch_splits_over_the_workers(self) -> SweepSpec:
        """`batch_size` is the global batch: each of the workers takes batch/workers."""
        workers, gpu = self.resources.workers, self.resources.gpu
        if workers > 1 and gpu and gpu != int(gpu):
            # NCCL cannot run two ranks of one group on one GPU
            raise RuleError("resources.gpu", f"is {gpu:g}, but with resources.workers "
                            f"{workers} must be 0 or a whole number of GPUs per worker")
        if workers == 1 or isinstance(self.train, LoopConfig):
            return self
        if self.train.batch_size % workers:
            raise RuleError("train.batch_size", f"is {self.train.batch_size}, but must be a "
                            f"multiple of resources.workers ({workers}): it is the global "
                            "batch, split evenly over the workers")
        dist = self.search_space.get("batch_size")
        if dist is not None:
            if dist.kind not in ("choice", "grid"):
                raise RuleError("search_space.batch_size", f"is {dist.kind}, but with "
                                f"resources.workers {workers} must be a choice or grid of "
                                f"multiples of {workers}")
            odd = [v for v in dist.args if isinstance(v, int) and v % workers]
            if odd:
                raise RuleError("search_space.batch_size", f"holds {odd[0]}, but each "
                                f"batch must be a multiple of resources.workers ({workers})")
        return self

    @model_validator(mode="after")
    def _tensorboard_needs_a_folder(self) -> SweepSpec:
        scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", self.storage)
        if self.tracking.tensorboard and scheme and scheme.group(1).lower() != "file":
            raise RuleError("tracking.tensorboard", "writes event files into the sweep's "
                            f"folder, and storage {self.storage!r} is an object store: "
                            "use a local or shared folder, or MLflow")
        wandb = self.tracking.wandb
        if wandb and wandb.dir is None and scheme and scheme.group(1).lower() != "file":
            raise RuleError("tracking.wandb", "writes W&B's run files into the sweep's "
                            f"folder, and storage {self.storage!r} is an object store: "
                            "set tracking.wandb.dir to a local folder")
        return self

    @model_validator(mode="after")
    def _warm_start_is_another_sweep(self) -> SweepSpec:
        warm = self.warm_start
        if warm and warm.source == self.name and warm.storage in (None, self.storage):
            raise RuleError("warm_start.from", f"is {warm.source!r}, this sweep's own name, "
                            "but must name an earlier sweep")
        return self

    @model_validator(mode="after")
    def _search_space_fits_the_trainable(self) -> SweepSpec:
        train = self.train.model_dump(mode="json")
        if isinstance(self.train, LoopConfig):
            for key in self.search_space:
                problem = _leaf_path_error(key, train)
                if problem:
                    raise RuleError(f"search_space.{key}", problem)
            return self
        for key, dist in self.search_space.items():
            problem = _leaf_path_error(key, train)
            if problem:
                raise RuleError(f"search_space.{key}", problem)
            for value in dist.representatives():
                problem = searched_value_problem(train, key, value)
                if problem:
                    raise RuleError(f"search_space.{key}", problem)
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
        if dist:
            return max(dist.representatives())
        if isinstance(self.train, LoopConfig):
            return self.train.settings["epochs"]
        return self.train.epochs

    def resolved(self) -> dict:
        """The spec as plain data, every default filled in (for sweep.json); it loads
        back into the same spec."""
        data = self.model_dump(mode="json")
        data["search_space"] = {k: {d.kind: list(d.args)} for k, d in self.search_space.items()}
        if self.warm_start is None:
            del data["warm_start"]  # sweep.json as before for a sweep without one
        else:
            data["warm_start"] = self.warm_start.resolved()
        return data


def searched_value_problem(train: Mapping[str, Any], key: str, value: Any) -> str | None:
    """Why the trainable's settings `train` (as plain data) cannot take `value` at the
    dotted `key` (`value 0 is invalid for train.model.depth: is 0, but must be >= 1`), or
    None when they can. A loop's settings are its own to check: None."""
    if "function" in train:
        return None
    trial = copy.deepcopy(dict(train))
    set_dotted(trial, key, value)
    try:
        TrainConfig.model_validate(trial)
    except ValidationError as exc:
        error = exc.errors()[0]
        return (f"value {shown(value)} is invalid for train.{dotted(error['loc'])}: "
                f"{describe(error)}")
    return None


# -- loading ---------------------------------------------------------------

def _leaf_path_error(key: str, train: Mapping | None = None) -> str | None:
    """None when `key` names a setting of the trainable, else why it does not. In a
    section that names a user's `factory` (in `train`), any one key is an argument of
    it: the factory's signature decides (`orchestrator.spec.user_code`)."""
    if isinstance(train, Mapping) and "function" in train:
        declared = sorted(_dotted_keys({k: v for k, v in train.items() if k != "function"}))
        if key in declared:
            return None
        return f"names no key that train: declares (it declares: {', '.join(declared)})"
    model: type[BaseModel] = TrainConfig
    parts = key.split(".")
    for i, part in enumerate(parts):
        fields = model.model_fields
        if part not in fields:
            where = "train" + "".join(f".{p}" for p in parts[:i])
            return f"names no setting of the trainable ({where} has: {', '.join(sorted(fields))})"
        annotation = fields[part].annotation
        tagged = tagged_members(annotation)
        if tagged and i == 0 and isinstance(train, Mapping) and _names_factory(train.get(part)):
            if len(parts) != 2 or parts[1] == "factory":
                return (f"names no argument of {part}.factory (search one key: "
                        f"{part}.<argument>)")
            return None
        if tagged:
            annotation = tagged[BUILTIN]
        nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if i < len(parts) - 1 and not nested:
            return f"names no setting of the trainable ({part} has no sub-keys)"
        if i == len(parts) - 1 and nested:
            keys = "|".join(sorted(annotation.model_fields))
            return f"names a section, not a setting; search one of its keys ({part}.{keys})"
        model = annotation
    return None


def _dotted_keys(data: Mapping, prefix: str = "") -> list[str]:
    """Every key of nested mappings as a dotted path: the leaves, and the sections too."""
    keys = []
    for key, value in data.items():
        keys.append(f"{prefix}{key}")
        if isinstance(value, Mapping):
            keys += _dotted_keys(value, f"{prefix}{key}.")
    return keys


def _names_factory(section: Any) -> bool:
    return (isinstance(section, Mapping) and "factory" in section) or \
        isinstance(section, UserFactory)


def parse_override(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` from --set; VALUE is YAML (so `0.1`, `[1, 2]`, `{choice: [a]}` work)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or not re.fullmatch(r"[A-Za-z0-9_.]+", key):
        raise SpecError("--set", text, "must look like KEY=VALUE with a dotted KEY")
    try:
        return key, safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise SpecError("--set", key, f"value is not valid YAML: {_yaml_problem(exc)} (a "
                        "string with YAML's special characters goes in quotes: "
                        f"--set '{key}=\"...\"')") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong, and at which column of the value."""
    problem = getattr(exc, "problem", None) or first_line(exc)
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at column {mark.column + 1}" if mark is not None else problem


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


def spec_from_mapping(data: Any, source: str = "<spec>",
                      base_dir: Path | None = None) -> SweepSpec:
    """Validate a mapping (already parsed YAML) into a `SweepSpec`. The user's code it
    names is imported and checked, with relative `code` folders read against `base_dir`
    (the spec file's folder; else the working directory)."""
    if not isinstance(data, Mapping):
        raise SpecError(source, "", f"must be a mapping of keys, got {type(data).__name__}")
    data = dict(data)
    for key in data:
        if not isinstance(key, str):
            raise SpecError(source, str(key), "keys must be strings")
    space = data.get("search_space") or {}
    if not isinstance(space, Mapping):
        raise SpecError(source, "search_space",
                        f"must be a mapping of dotted keys, got {shown(space)}")
    train = data.get("train") or {}
    if not isinstance(train, Mapping):
        raise SpecError(source, "train", f"must be a mapping, got {shown(train)}")
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
        if _leaf_path_error(key, base) is None and not has_dotted(base, key):
            set_dotted(base, key, first)
            filled[key] = first
    # keep the fixed values as written (defaults where absent) when they validate alone
    try:
        if "function" not in train:
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
                    f"value {shown(filled[searched])} is invalid for {err.key}: {err.problem}",
                ) from None
            raise
    return resolve_code(spec, base_dir, source)


def load_spec(path: str | Path, overrides: list[str] = ()) -> SweepSpec:
    """Read a YAML spec (yaml.safe_load only) and apply `--set KEY=VALUE` overrides."""
    path = Path(path)
    source = str(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a named pipe would block the read for ever
            raise SpecError(source, "", "is not a regular file (a named pipe, a device or a "
                                        "folder): a spec is a YAML file")
        size = info.st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(source, "", f"is {size / 2**20:.1f} MiB; a spec is a few KB "
                                        f"(at most {MAX_SPEC_BYTES // 2**20} MiB)")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(source, "", f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(source, "", f"is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                                    f"offset {exc.start}); save it as UTF-8") from None
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or first_line(exc)
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
            return spec_from_mapping(data, source, path.parent)
        except SpecError as err:
            for key, _ in parsed:
                if err.key == key or err.key.startswith(key + "."):
                    raise SpecError("--set", err.key, err.problem) from None
            raise
    return spec_from_mapping(data, source, path.parent)
