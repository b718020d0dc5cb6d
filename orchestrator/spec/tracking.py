"""The `tracking:` section: where a sweep's trials are mirrored besides its tables.

    tracking:
      mlflow: {uri: "http://127.0.0.1:5000", experiment: my-sweep}
      tensorboard: true

Only what the driver needs to reach the tools is validated here; reaching them is the
tracking stage's (`orchestrator.tracking`)."""

from __future__ import annotations

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


class Tracking(Strict):
    mlflow: MlflowTracking | None = None
    tensorboard: bool = False  # event files per trial under <sweep>/tensorboard

    @property
    def enabled(self) -> bool:
        return self.mlflow is not None or self.tensorboard
