"""The trackers a spec's `tracking:` section asks for, and the sweep's identity in them."""

from __future__ import annotations

import contextlib
from typing import Any

from orchestrator.errors import OrchestratorError
from orchestrator.results.storage import Location
from orchestrator.spec.tracking import Tracking
from orchestrator.tracking.mirror import SweepIdentity, Tracker


def trackers_for(tracking: Tracking, folder: Location) -> list[Tracker]:
    trackers: list[Tracker] = []
    if tracking.mlflow is not None:
        from orchestrator.tracking.mlflow_runs import MlflowTracker

        trackers.append(MlflowTracker(tracking.mlflow.uri, tracking.mlflow.experiment))
    if tracking.tensorboard:
        from orchestrator.tracking.tensorboard_runs import TensorBoardTracker

        if folder.local is None:  # the spec refuses this; `sweep track`'s option is checked
            raise OrchestratorError(f"tracking.tensorboard: {folder} is on an object store; "
                                    "event files need a local or shared folder")
        trackers.append(TensorBoardTracker(folder.local))
    return trackers


def client_environment(tracking: Tracking) -> contextlib.AbstractContextManager[None]:
    """The tracking clients' settings (MLflow's retries and timeout), entered once on the
    main thread: the sender thread must not change the environment under Ray's threads."""
    if tracking.mlflow is None:
        return contextlib.nullcontext()
    from orchestrator.tracking.mlflow_runs import client_environment as mlflow_environment

    return mlflow_environment()


def check_reachable(tracking: Tracking, track_command: str | None) -> None:
    """Before Ray starts: an MLflow server that does not answer is one line, exit 2,
    saying that `track_command` sends the tables later."""
    if tracking.mlflow is not None:
        from orchestrator.tracking.mlflow_runs import MlflowTracker

        MlflowTracker(tracking.mlflow.uri, tracking.mlflow.experiment).check(track_command)


def identity(sweep_json: dict[str, Any], folder: Location) -> SweepIdentity:
    spec = sweep_json["spec"]
    return SweepIdentity(name=spec["name"], started_at=str(sweep_json.get("started_at")),
                         folder=str(folder.local or folder), metric=spec["metric"],
                         mode=spec["mode"], spec=spec)
