"""`sweep track`: send a sweep's tables to MLflow, TensorBoard and W&B after the fact."""

from __future__ import annotations

import click

from orchestrator.cli.common import main, user_errors


@main.command()
@click.argument("name_or_path", metavar="NAME_OR_PATH")
@click.option("--storage", help="Folder that holds sweeps (NAME is looked up there).")
@click.option("--mlflow-uri", help="MLflow tracking URI (default: the spec's "
              "tracking.mlflow.uri).")
@click.option("--experiment", help="MLflow experiment (default: the spec's, else the "
              "sweep's name).")
@click.option("--tensorboard/--no-tensorboard", default=None,
              help="(Re)write the TensorBoard event files (default: as the spec says).")
@click.option("--wandb-project", help="W&B project (default: the spec's "
              "tracking.wandb.project).")
@click.option("--wandb-entity", help="W&B entity (default: the spec's, else yours).")
@click.option("--wandb-mode", type=click.Choice(["online", "offline"]),
              help="W&B online, or offline run files for `wandb sync` (default: the "
              "spec's, else online).")
@click.option("--wandb-dir", help="Folder W&B writes its files into (default: the spec's, "
              "else the sweep's folder).")
@user_errors
def track(name_or_path: str, storage: str | None, mlflow_uri: str | None,
          experiment: str | None, tensorboard: bool | None, wandb_project: str | None,
          wandb_entity: str | None, wandb_mode: str | None, wandb_dir: str | None) -> None:
    """Send a sweep's trials to its trackers: what they missed (a server that was down)
    or a whole sweep that ran without tracking. Runs already there are continued, never
    duplicated."""
    from pydantic import ValidationError

    from orchestrator.errors import OrchestratorError
    from orchestrator.results.folder import locate, read_sweep_json
    from orchestrator.tracking.replay import replay, tracking_of

    folder = locate(name_or_path, storage)
    try:
        tracking = tracking_of(read_sweep_json(folder)["spec"], mlflow_uri, experiment,
                               tensorboard, {"project": wandb_project, "entity": wandb_entity,
                                             "mode": wandb_mode, "dir": wandb_dir})
    except ValidationError as exc:
        error = exc.errors()[0]
        option = ("--experiment" if "experiment" in error["loc"] else
                  f"--wandb-{error['loc'][-1]}" if error["loc"][-1] in ("project", "entity")
                  else "--mlflow-uri")
        raise OrchestratorError(f"{option}: {error['msg'].removeprefix('Value error, ')}"
                                ) from None
    done = replay(folder, tracking)
    click.echo(f"sent {done.epochs_sent} new epoch points of {done.trials} trials to "
               + ", ".join(done.trackers), err=True)
