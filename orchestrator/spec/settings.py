"""Settings of the shared trainable: the `train:` section of a sweep spec.

The models are flat on purpose: every schedule/optimizer/dataset option lives on
one model with a default, so that a search space can switch `schedule.name`
between families without the other family's keys becoming invalid.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from orchestrator.diagnosis.curves import SIGNALS as DIAGNOSIS_SIGNALS
from orchestrator.spec.strict import Strict
from orchestrator.spec.user_code import REF_PATTERN

IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
TORCHVISION_DATASETS = ("mnist", "fashion_mnist", "cifar10")

class DatasetConfig(Strict):
    name: Literal["digits", "synthetic", "table", "mnist", "fashion_mnist", "cifar10"] = "digits"
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    # synthetic: seeded classification data (sklearn.make_classification)
    n_samples: int = Field(2000, ge=20)
    n_features: int = Field(20, ge=2)
    n_classes: int = Field(2, ge=2)
    noise: float = Field(0.05, ge=0.0, le=1.0, description="fraction of labels flipped at random")
    # table: a Parquet or CSV file with a label column
    path: str | None = None
    label: str = "label"
    # torchvision data sets
    root: str | None = None
    download: bool = False
    limit: int | None = Field(None, ge=10, description="use only the first N training examples")
    standardize: bool = Field(True, description="table: scale features by the training split")

    @model_validator(mode="after")
    def _needs(self) -> DatasetConfig:
        if self.name == "table" and not self.path:
            raise ValueError("dataset 'table' needs `path` (a .parquet or .csv file)")
        if self.name in TORCHVISION_DATASETS and not self.root:
            raise ValueError(f"dataset {self.name!r} needs `root` (a folder for its files)")
        return self


class ModelConfig(Strict):
    name: Literal["mlp", "cnn", "resnet"] = "mlp"
    hidden: int = Field(128, ge=1)
    depth: int = Field(2, ge=1, le=64)
    activation: Literal["relu", "gelu", "tanh", "silu", "sigmoid"] = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    norm: Literal["none", "batch", "layer"] = "none"
    channels: int = Field(16, ge=1, description="cnn/resnet: channels of the first stage")


class OptimizerConfig(Strict):
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0.0)
    beta1: float = Field(0.9, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    grad_clip: float | None = Field(None, gt=0.0, description="max global gradient norm")

    @model_validator(mode="after")
    def _nesterov(self) -> OptimizerConfig:
        if self.name == "sgd" and self.nesterov and self.momentum == 0:
            raise ValueError("nesterov is true, but needs momentum > 0")
        return self


ScheduleName = Literal[
    "constant", "step", "multistep", "exponential", "cosine", "cosine_restarts",
    "onecycle", "linear", "plateau",
]


class ScheduleConfig(Strict):
    name: ScheduleName = "constant"
    warmup_epochs: float = Field(0.0, ge=0.0)
    step_size: int = Field(10, ge=1, description="step: epochs between decays")
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="step/multistep/exponential factor")
    milestones: tuple[int, ...] = Field((10, 15), description="multistep: epochs of decay")
    eta_min: float = Field(0.0, ge=0.0, description="cosine/cosine_restarts: floor of the rate")
    T_0: int = Field(10, ge=1, description="cosine_restarts: epochs of the first cycle")
    T_mult: int = Field(1, ge=1, description="cosine_restarts: growth of each cycle")
    pct_start: float = Field(0.3, gt=0.0, lt=1.0, description="onecycle: rising share")
    div_factor: float = Field(25.0, gt=0.0, description="onecycle: lr / initial rate")
    final_div_factor: float = Field(1e4, gt=0.0, description="onecycle: initial / final rate")
    end_factor: float = Field(0.0, ge=0.0, le=1.0, description="linear: final share of the rate")
    factor: float = Field(0.1, gt=0.0, lt=1.0, description="plateau: decay factor")
    patience: int = Field(3, ge=0, description="plateau: epochs without improvement")
    threshold: float = Field(1e-4, ge=0.0, description="plateau: relative improvement that counts")


class UserFactory(BaseModel):
    """A user's model or data set: `factory` names a callable ("module:attr"); every
    other key is a keyword argument of it, searchable like any setting."""

    model_config = ConfigDict(extra="allow", frozen=True)
    factory: str = Field(pattern=REF_PATTERN)

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


# tags of the built-in and the user's kind of a section (messages leave them out)
BUILTIN, USER = "<builtin>", "<factory>"


def _kind_by(key: str, user: type[BaseModel]) -> Any:
    """The tag of a value: the user's kind when it names `key` (factory, function)."""
    def kind(value: Any) -> str:
        if isinstance(value, dict):
            return USER if key in value else BUILTIN
        return USER if isinstance(value, user) else BUILTIN
    return kind


def tagged_members(annotation: Any) -> dict[str, type[BaseModel]]:
    """{tag: model} of a section that takes a built-in or a user's kind; {} otherwise."""
    members = {}
    for member in get_args(annotation):
        args = get_args(member)
        tags = [a.tag for a in args[1:] if isinstance(a, Tag)]
        if tags:
            members[tags[0]] = args[0]
    return members


def _builtin_or_user(builtin: type[BaseModel], user: type[BaseModel] | None = None,
                     key: str = "factory") -> Any:
    user = user or UserFactory
    return Annotated[Union[Annotated[builtin, Tag(BUILTIN)],  # noqa: UP007
                           Annotated[user, Tag(USER)]], Discriminator(_kind_by(key, user))]


Task = Literal["classification", "regression"]
Loss = Literal["cross_entropy", "mse", "l1", "huber"]
LOSSES: dict[str, tuple[str, ...]] = {"classification": ("cross_entropy",),
                                      "regression": ("mse", "l1", "huber")}


class BatchScalingConfig(Strict):
    rule: Literal["none", "linear", "sqrt"] = "none"
    reference_batch_size: int = Field(32, ge=1)


class OomConfig(Strict):
    """What a trial does when a training step runs out of (GPU) memory: halve the batch,
    scale the rate by the batch-scaling rule and redo the epoch, down to
    `min_batch_size` (trainable/trainer.py; docs/trainable.md)."""

    halve: bool = Field(True, description="false: an out-of-memory error ends the trial")
    min_batch_size: int = Field(8, ge=1, description="the smallest batch a halving may reach")


# where a trial trains: `auto` takes CUDA when Ray gave the trial a GPU (and fails at
# once when torch sees no CUDA there), `cpu` always the CPU, `cuda` always CUDA
Device = Literal["auto", "cpu", "cuda"]


class EarlyStoppingConfig(Strict):
    patience: int | None = Field(5, ge=1, description="null turns early stopping off")
    min_delta: float = Field(0.0, ge=0.0)


class TrainConfig(Strict):
    task: Task = "classification"
    loss: Loss | None = Field(None, description="null: cross_entropy, or mse for regression")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="cross_entropy only")
    dataset: _builtin_or_user(DatasetConfig) = DatasetConfig()
    model: _builtin_or_user(ModelConfig) = ModelConfig()
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    batch_scaling: BatchScalingConfig = BatchScalingConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    precision: Literal["fp32", "bf16"] = "fp32"
    device: Device = "auto"
    oom: OomConfig = OomConfig()
    eval_batch_size: int = Field(4096, ge=1)
    checkpoint_every: int | None = Field(
        None, ge=1, description="epochs between checkpoints; null: every "
        "checkpoint_interval_s of the trial's time, at its last epoch, and every epoch "
        "under a scheduler that pauses or copies trials (hyperband, pbt)")
    checkpoint_interval_s: float = Field(
        30.0, gt=0, description="with checkpoint_every null: the most time a trial loses "
        "when its process dies")

    @property
    def loss_name(self) -> str:
        return self.loss or LOSSES[self.task][0]

    @model_validator(mode="after")
    def _loss_fits_the_task(self) -> TrainConfig:
        if self.loss_name not in LOSSES[self.task]:
            raise ValueError(f"loss is {self.loss!r}, but a {self.task} takes one of: "
                             f"{', '.join(LOSSES[self.task])}")
        if self.label_smoothing and self.task != "classification":
            raise ValueError("label_smoothing applies to cross_entropy (classification) only")
        if self.task == "regression" and isinstance(self.dataset, DatasetConfig) \
                and self.dataset.name != "table":
            raise ValueError(f"task 'regression' needs a table or your own data set "
                             f"(dataset.factory), but dataset is {self.dataset.name!r}")
        return self

    @model_validator(mode="after")
    def _image_models_need_images(self) -> TrainConfig:
        if not isinstance(self.model, ModelConfig) or not isinstance(self.dataset,
                                                                      DatasetConfig):
            return self  # a user's model or data: its factory says what it takes
        if self.model.name != "mlp" and self.dataset.name not in IMAGE_DATASETS:
            raise ValueError(
                f"model {self.model.name!r} needs an image data set "
                f"({', '.join(IMAGE_DATASETS)}), but dataset is {self.dataset.name!r}"
            )
        return self


class LoopConfig(BaseModel):
    """`train:` of a sweep whose trials run the user's own loop: `function` names it
    ("module:attr"); every other key is the user's config, handed to the function as a
    dict and searchable by its dotted path."""

    model_config = ConfigDict(extra="allow", frozen=True)
    function: str = Field(pattern=REF_PATTERN)

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


# `train:` holds the shared trainable's settings, or the config of the user's own loop
TrainSection = _builtin_or_user(TrainConfig, LoopConfig, key="function")

Metric = Literal["val_acc", "val_loss", "train_loss", "val_mae", "val_r2"]
Mode = Literal["max", "min"]
# the direction each metric improves in: the spec's mode follows from it
MODE_OF: dict[str, Mode] = {"val_acc": "max", "val_loss": "min", "train_loss": "min",
                            "val_mae": "min", "val_r2": "max"}
# what each task reports every epoch; the first is a spec's metric when it names none
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("val_acc", "val_loss", "train_loss"),
    "regression": ("val_loss", "train_loss", "val_mae", "val_r2"),
}
# what the training itself shows each epoch (trainable/signals.py; a user's loop records
# them with `trial.watch`): the global gradient norm before clipping (mean and max over
# the measured steps), the update's size against the weights (median), the first weight
# layer's gradient norm against the last's (median; nets of 3+ weight layers). Named in
# the diagnosis, the lowest stage that reads them
SIGNALS = DIAGNOSIS_SIGNALS
# where sweeps are kept when neither the spec nor an option says
DEFAULT_STORAGE = "./sweeps"



def best_column(metric: str) -> str:
    """The name of a metric's best value over a trial's epochs (a trials column)."""
    return f"best_{metric}"


class Objective(Strict):
    """What the trial optimises: its early stopping and plateau schedule follow it (a
    user's loop: any metric it reports)."""

    metric: str = "val_acc"
    mode: Mode = "max"


class CodeConfig(Strict):
    """Where a trial finds the user's code: the package Ray shipped (`package`, holding
    one folder per code folder), else the folders themselves on this machine."""

    package: str | None = None
    folders: tuple[str, ...] = ()


class LoopCheckpoints(Strict):
    """When a user's loop's checkpoints are kept: every `every` epochs, else once
    `interval_s` has passed, and at the end (the shared trainable's policy)."""

    every: int | None = None
    interval_s: float = 30.0


class LoopTrialConfig(Strict):
    """Everything a trial of the user's own loop receives from Ray Tune."""

    train: LoopConfig
    objective: Objective
    seed: int = 0
    code: CodeConfig = CodeConfig()
    checkpoint: LoopCheckpoints = LoopCheckpoints()
    warm_start_rerun: bool = False  # an earlier sweep's best, run again (engine/warm_start.py)


# the key of a trial's config that holds its worker group (resources, workers >= 2): read
# by the trial's driver (trainable/distributed.py) and the tables, not a setting
GROUP_KEY = "group"
# the key of a worker group's reports to Tune that names its placement group (hex id):
# the driver removes it once Tune has ended or paused the trial (engine/groups.py)
GROUP_PLACEMENT_KEY = "group_placement_group"


class TrialConfig(Strict):
    """Everything one trial receives from Ray Tune (its resolved `config`)."""

    train: TrainConfig = TrainConfig()
    objective: Objective = Objective()
    seed: int = 0
    code: CodeConfig = CodeConfig()
    warm_start_rerun: bool = False  # an earlier sweep's best, run again (engine/warm_start.py)
