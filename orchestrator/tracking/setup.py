"""The trackers a spec's `tracking:` section asks for, and the sweep's identity in them."""

from __future__ import annotations

from typing import Any

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

        if folder.local is None:  # the spec refuses this; a replay's option may not
            raise ValueError("TensorBoard event files need a local sweep folder")
        trackers.append(TensorBoardTracker(folder.local))
    return trackers


def check_reachable(tracking: Tracking, sweep_name: str) -> None:
    """Before Ray starts: an MLflow server that does not answer is one line, exit 2."""
    if tracking.mlflow is not None:
        from orchestrator.tracking.mlflow_runs import MlflowTracker

        MlflowTracker(tracking.mlflow.uri, tracking.mlflow.experiment).check(sweep_name)


def identity(sweep_json: dict[str, Any], folder: Location) -> SweepIdentity:
    spec = sweep_json["spec"]
    return SweepIdentity(name=spec["name"], started_at=str(sweep_json.get("started_at")),
                         folder=str(folder.local or folder), metric=spec["metric"],
                         mode=spec["mode"], spec=spec)
