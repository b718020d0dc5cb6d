"""`sweep track`: send a sweep's tables to MLflow and TensorBoard after the fact."""

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
@user_errors
def track(name_or_path: str, storage: str | None, mlflow_uri: str | None,
          experiment: str | None, tensorboard: bool | None) -> None:
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
                               tensorboard)
    except ValidationError as exc:
        error = exc.errors()[0]
        option = "--experiment" if "experiment" in error["loc"] else "--mlflow-uri"
        raise OrchestratorError(f"{option}: {error['msg'].removeprefix('Value error, ')}"
                                ) from None
    done = replay(folder, tracking)
    click.echo(f"sent {done.epochs_sent} new epoch points of {done.trials} trials to "
               + ", ".join(done.trackers), err=True)
