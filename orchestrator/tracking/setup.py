"""The trackers a spec's `tracking:` section asks for, and the sweep's identity in them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
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
    if tracking.wandb is not None:
        from orchestrator.tracking.wandb_runs import WandbTracker

        wandb = tracking.wandb
        trackers.append(WandbTracker(wandb.project, wandb.entity, wandb.mode,
                                     wandb_root(tracking, folder)))
    return trackers


def wandb_root(tracking: Tracking, folder: Location) -> Path:
    """Where W&B writes its `wandb/` folder: `tracking.wandb.dir`, else the sweep's."""
    if tracking.wandb.dir is not None:
        return Path(tracking.wandb.dir)
    if folder.local is None:  # the spec refuses this; `sweep track`'s options are checked
        raise OrchestratorError(f"tracking.wandb: {folder} is on an object store; W&B's run "
                                "files need a local folder: set tracking.wandb.dir")
    return folder.local


@contextlib.contextmanager
def client_environment(tracking: Tracking, folder: Location) -> Iterator[None]:
    """The tracking clients' settings (MLflow's retries and timeout, W&B's cache folder),
    entered once on the main thread: the sender thread must not change the environment
    under Ray's threads."""
    with contextlib.ExitStack() as stack:
        if tracking.mlflow is not None:
            from orchestrator.tracking.mlflow_runs import client_environment as mlflow_env

            stack.enter_context(mlflow_env())
        if tracking.wandb is not None:
            from orchestrator.tracking.wandb_runs import client_environment as wandb_env

            stack.enter_context(wandb_env(wandb_root(tracking, folder)))
        yield


def check_reachable(tracking: Tracking, track_command: str | None) -> None:
    """Before Ray starts: an MLflow server that does not answer, or W&B online without
    an API key or a server, is one line, exit 2, saying that `track_command` sends the
    tables later."""
    if tracking.mlflow is not None:
        from orchestrator.tracking.mlflow_runs import MlflowTracker

        MlflowTracker(tracking.mlflow.uri, tracking.mlflow.experiment).check(track_command)
    if tracking.wandb is not None and tracking.wandb.mode == "online":
        from orchestrator.tracking.wandb_runs import check

        check(track_command)


def identity(sweep_json: dict[str, Any], folder: Location) -> SweepIdentity:
    spec = sweep_json["spec"]
    return SweepIdentity(name=spec["name"], started_at=str(sweep_json.get("started_at")),
                         folder=str(folder.local or folder), metric=spec["metric"],
                         mode=spec["mode"], spec=spec)
