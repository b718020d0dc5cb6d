"""The `tracking:` section: where a sweep's trials are mirrored besides its tables.

    tracking:
      mlflow: {uri: "http://127.0.0.1:5000", experiment: my-sweep}
      tensorboard: true
      wandb: {project: my-project, entity: my-team, mode: offline}

Only what the driver needs to reach the tools is validated here; reaching them is the
tracking stage's (`orchestrator.tracking`)."""

from __future__ import annotations

import os
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from orchestrator.spec.credentials import mlflow_problem
from orchestrator.spec.strict import Strict

# MLflow's tracking stores: its server, or a database it writes itself (MLflow 3 refuses
# its old file store: sqlite:///mlflow.db is the local one)
MLFLOW_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks")


class MlflowTracking(Strict):
    uri: str = Field(min_length=1, max_length=2000)
    # defaults to the sweep's name (`experiment_name`)
    experiment: str | None = Field(None, min_length=1, max_length=500)

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, uri: str) -> str:
        problem = mlflow_problem(uri)  # first: the messages below quote the URI
        if problem:
            raise ValueError(problem)
        scheme = urlsplit(uri).scheme.split("+")[0].lower()
        if scheme not in MLFLOW_SCHEMES:
            raise ValueError(f"is {uri!r}, but must be an MLflow tracking URI starting "
                             f"with one of {', '.join(s + ':' for s in MLFLOW_SCHEMES)} "
                             "(e.g. http://127.0.0.1:5000)")
        return uri


class WandbTracking(Strict):
    project: str = Field(min_length=1, max_length=128)
    entity: str | None = Field(None, min_length=1, max_length=128)  # W&B's default: yours
    # online: W&B's server (an API key from `wandb login` or WANDB_API_KEY); offline: run
    # files under `dir` that `wandb sync` uploads later
    mode: Literal["online", "offline"] = "online"
    # the folder W&B writes its `wandb/` folder into; default: the sweep's folder. Made
    # absolute (against the current folder, as `storage`) so that `sweep track` run from
    # elsewhere finds the runs the sweep wrote
    dir: str | None = Field(None, min_length=1)

    @field_validator("dir")
    @classmethod
    def _absolute(cls, folder: str | None) -> str | None:
        return None if folder is None else os.path.abspath(os.path.expanduser(folder))

    @field_validator("project", "entity")
    @classmethod
    def _no_slash(cls, name: str | None) -> str | None:
        if name is not None and any(c in name for c in "/\\#?%:"):
            raise ValueError(f"is {name!r}, but W&B names hold none of / \\ # ? % :")
        return name


class Tracking(Strict):
    mlflow: MlflowTracking | None = None
    tensorboard: bool = False  # event files per trial under <sweep>/tensorboard
    wandb: WandbTracking | None = None  # a W&B run per trial

    @property
    def enabled(self) -> bool:
        return self.mlflow is not None or self.tensorboard or self.wandb is not None
