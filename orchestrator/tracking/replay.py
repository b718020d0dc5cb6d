"""`sweep track`: send a sweep's tables to its trackers after the fact — what a tracker
missed while it was down, or a sweep that ran without tracking. No Ray (TensorBoard's
writer, tensorboardX, imports torch)."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.errors import OrchestratorError
from orchestrator.results import schema
from orchestrator.results.lease import refuse_if_held
from orchestrator.results.storage import Location
from orchestrator.spec.tracking import MlflowTracking, Tracking, WandbTracking
from orchestrator.tracking.mirror import Mirror, present


@dataclass
class Replayed:
    trials: int
    epochs_sent: int
    trackers: list[str]  # where each tracker wrote


def tracking_of(recorded: dict, uri: str | None, experiment: str | None,
                tensorboard: bool | None, wandb: dict | None = None) -> Tracking:
    """The sweep's own `tracking:` section, with what the options change in it (`wandb`:
    the `tracking.wandb` keys the options give; a project names a tracker)."""
    tracking = Tracking.model_validate(recorded.get("tracking") or {})
    mlflow = tracking.mlflow
    if uri is not None:
        mlflow = MlflowTracking(uri=uri, experiment=experiment)
    elif experiment is not None and mlflow is not None:
        mlflow = MlflowTracking(uri=mlflow.uri, experiment=experiment)
    given = {k: v for k, v in (wandb or {}).items() if v is not None}
    wandb_tracking = tracking.wandb
    if given and (wandb_tracking is not None or "project" in given):
        base = wandb_tracking.model_dump() if wandb_tracking is not None else {}
        wandb_tracking = WandbTracking.model_validate({**base, **given})
    return Tracking(mlflow=mlflow, tensorboard=tracking.tensorboard
                    if tensorboard is None else tensorboard, wandb=wandb_tracking)


def replay(folder: Location, tracking: Tracking) -> Replayed:
    from orchestrator.analysis.advice import advise
    from orchestrator.results.load import load_sweep
    from orchestrator.tracking.setup import (
        check_reachable,
        client_environment,
        identity,
        trackers_for,
    )

    if not tracking.enabled:
        raise OrchestratorError(
            f"{folder}: the sweep's spec has no `tracking:` section; name a tracker: "
            "--mlflow-uri URI, --tensorboard and/or --wandb-project P")
    if tracking.tensorboard and folder.local is None:
        raise OrchestratorError("--tensorboard: event files are written into the sweep's "
                                f"folder, and {folder} is on an object store")
    if tracking.wandb and tracking.wandb.dir is None and folder.local is None:
        raise OrchestratorError("--wandb-project: W&B's run files are written into the "
                                f"sweep's folder, and {folder} is on an object store: "
                                "add --wandb-dir DIR")
    refuse_if_held(folder)  # a running driver sends its own rows
    tables = load_sweep(folder)
    check_reachable(tracking, None)  # this is `sweep track`
    trackers = trackers_for(tracking, folder)
    where = [t.where for t in trackers]
    mirror = Mirror(trackers, resend_hint="sweep track", quiet=True)
    trials = {r[schema.TRIAL_ID]: r for r in tables.trials.to_dict("records")}
    by_trial: dict[str, dict[int, dict]] = {}
    for row in tables.history.to_dict("records"):
        by_trial.setdefault(row[schema.TRIAL_ID], {})[int(row["epoch"])] = row
    with client_environment(tracking, folder):
        mirror.open(identity(tables.sweep, folder))
        sent = mirror.sync(trials, by_trial)
        mirror.finish(list(trials.values()), advise(tables.trials, tables.spec),
                      interrupted=any(not present(t.get(schema.STOP_REASON))
                                      for t in trials.values()))
    if mirror.failures:  # what was sent stays; run it again to send the rest
        raise OrchestratorError(f"{mirror.failures[0]}; what it holds is kept, and "
                                "`sweep track` sends the rest once it answers")
    return Replayed(len(trials), sent, where)
