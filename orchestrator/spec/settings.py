"""Settings of the shared trainable: the `train:` section of a sweep spec.

The models are flat on purpose: every schedule/optimizer/dataset option lives on
one model with a default, so that a search space can switch `schedule.name`
between families without the other family's keys becoming invalid.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
TORCHVISION_DATASETS = ("mnist", "fashion_mnist", "cifar10")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetConfig(_Strict):
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

    @model_validator(mode="after")
    def _needs(self) -> DatasetConfig:
        if self.name == "table" and not self.path:
            raise ValueError("dataset 'table' needs `path` (a .parquet or .csv file)")
        if self.name in TORCHVISION_DATASETS and not self.root:
            raise ValueError(f"dataset {self.name!r} needs `root` (a folder for its files)")
        return self


class ModelConfig(_Strict):
    name: Literal["mlp", "cnn", "resnet"] = "mlp"
    hidden: int = Field(128, ge=1)
    depth: int = Field(2, ge=1, le=64)
    activation: Literal["relu", "gelu", "tanh", "silu"] = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    norm: Literal["none", "batch", "layer"] = "none"
    channels: int = Field(16, ge=1, description="cnn/resnet: channels of the first stage")


class OptimizerConfig(_Strict):
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


class ScheduleConfig(_Strict):
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


class BatchScalingConfig(_Strict):
    rule: Literal["none", "linear", "sqrt"] = "none"
    reference_batch_size: int = Field(32, ge=1)


class EarlyStoppingConfig(_Strict):
    patience: int | None = Field(5, ge=1, description="null turns early stopping off")
    min_delta: float = Field(0.0, ge=0.0)


class TrainConfig(_Strict):
    dataset: DatasetConfig = DatasetConfig()
    model: ModelConfig = ModelConfig()
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    batch_scaling: BatchScalingConfig = BatchScalingConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    precision: Literal["fp32", "bf16"] = "fp32"
    eval_batch_size: int = Field(4096, ge=1)
    checkpoint_every: int | None = Field(
        None, ge=1, description="epochs between checkpoints; null: every "
        "checkpoint_interval_s of the trial's time, at its last epoch, and every epoch "
        "under a scheduler that pauses or copies trials (hyperband, pbt)")
    checkpoint_interval_s: float = Field(
        30.0, gt=0, description="with checkpoint_every null: the most time a trial loses "
        "when its process dies")

    @model_validator(mode="after")
    def _image_models_need_images(self) -> TrainConfig:
        if self.model.name != "mlp" and self.dataset.name not in IMAGE_DATASETS:
            raise ValueError(
                f"model {self.model.name!r} needs an image data set "
                f"({', '.join(IMAGE_DATASETS)}), but dataset is {self.dataset.name!r}"
            )
        return self


Metric = Literal["val_acc", "val_loss", "train_loss"]
Mode = Literal["max", "min"]


class Objective(_Strict):
    """What the trial optimises: its early stopping and plateau schedule follow it."""

    metric: Metric = "val_acc"
    mode: Mode = "max"


class TrialConfig(_Strict):
    """Everything one trial receives from Ray Tune (its resolved `config`)."""

    train: TrainConfig = TrainConfig()
    objective: Objective = Objective()
    seed: int = 0
