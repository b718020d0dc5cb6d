"""`sweep submit`, `sweep jobs`, `sweep logs` and `sweep stop`: a Ray cluster's Jobs API."""

from __future__ import annotations

import sys

import click

from orchestrator.cli.common import (
    load_spec_with,
    main,
    out_console,
    user_errors,
)
from orchestrator.errors import OrchestratorError, SweepBusy

_address = click.option("--address", required=True,
                        help="The cluster's dashboard, http://HOST:8265 (`ray dashboard "
                        "cluster.yaml` forwards it to http://127.0.0.1:8265).")
def _refuse_if_being_written(storage: str, name: str) -> None:
    """A sweep on an object store this machine reaches, whose lease a live driver holds,
    is refused here, before the cluster is bothered. The job's driver takes the lease
    itself, so a store this machine cannot read (no credentials here) is left to it."""
    from orchestrator.results.lease import refuse_if_held
    from orchestrator.results.storage import is_uri, open_storage

    if not is_uri(storage):
        return  # a folder on the cluster: not visible from here
    try:
        refuse_if_held(open_storage(storage) / name)
    except SweepBusy:
        raise
    except OrchestratorError:
        return


def _connect(address: str, insecure: bool):
    """The Jobs API client; the SDK's INFO lines (each upload, each websocket close) are
    not the user's business, so this command shows its warnings only."""
    import logging

    from orchestrator.jobs.client import connect

    logging.getLogger("ray.dashboard").setLevel(logging.WARNING)
    return connect(address, insecure)


_insecure = click.option("--insecure", is_flag=True,
                         help="Allow plain HTTP to another machine without an auth token.")


@main.command()
@click.argument("spec_path", metavar="SPEC", required=False,
                type=click.Path(dir_okay=False))
@_address
@click.option("--storage", help="Absolute path of a folder every node sees, or an object "
              "store URI (default: the spec's storage, which must then be one of those).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any spec key (dotted; VALUE is YAML). Repeatable.")
@click.option("--resume", "resume_name", metavar="NAME",
              help="Submit `sweep resume NAME` instead of a new sweep (no SPEC).")
@click.option("--wait", is_flag=True, help="Stream the job's log and exit with the "
              "sweep's exit code.")
@_insecure
@user_errors
def submit(spec_path: str | None, address: str, storage: str | None, sets: tuple[str, ...],
           resume_name: str | None, wait: bool, insecure: bool) -> None:
    """Submit a sweep (or its resume) to a Ray cluster as a job."""
    import tempfile
    from pathlib import Path

    from orchestrator.jobs import client as cluster
    from orchestrator.jobs import staging
    from orchestrator.results.storage import is_uri
    from orchestrator.spec.credentials import refuse_storage_credentials

    if bool(spec_path) == bool(resume_name):
        raise OrchestratorError("submit: give a SPEC to run, or --resume NAME, not both")
    if storage:  # it travels in the job's metadata, entrypoint and spec: never a secret
        refuse_storage_credentials(storage, "--storage")
    # bad input first, before anything reaches the cluster
    if resume_name:
        if not storage or not (is_uri(storage) or Path(storage).is_absolute()):
            raise OrchestratorError("--storage: --resume needs the sweep's storage on "
                                    "the cluster, as an absolute path or a URI")
    else:
        spec = load_spec_with(spec_path, sets)
        where = staging.cluster_storage(spec, storage)
        staging.check_warm_start(spec, where)
    _refuse_if_being_written(storage if resume_name else where, resume_name or spec.name)
    client = _connect(address, insecure)
    with tempfile.TemporaryDirectory(prefix="sweep-job-") as package:
        if resume_name:
            job = cluster.submit_job(client, cluster.resume_entrypoint(resume_name, storage),
                                     resume_name, storage, None)
        else:
            staging.package_job(spec, where, Path(package))
            job = cluster.submit_job(client, cluster.run_entrypoint(), spec.name, where,
                                     Path(package))
    following = f"--address {address}"
    click.echo(f"submitted sweep {job.name} as job {job.job_id}\n"
               f"  follow:  sweep logs {job.job_id} {following} --follow\n"
               f"  stop:    sweep stop {job.job_id} {following}\n"
               f"  resume:  sweep submit --resume {job.name} --storage {job.storage} "
               f"{following}\n"
               f"  results: {job.storage}/{job.name}/results (on the cluster)", err=True)
    if wait:
        code = cluster.follow(client, job.job_id, lambda text: click.echo(text, nl=False))
        sys.exit(code)


@main.command()
@_address
@_insecure
@user_errors
def jobs(address: str, insecure: bool) -> None:
    """The jobs submitted to a cluster, oldest first."""
    from rich.table import Table

    from orchestrator.jobs import client as cluster

    rows = cluster.job_rows(_connect(address, insecure))
    table = Table(title=f"{len(rows)} jobs at {address}", title_justify="left")
    for column in ("job", "sweep", "status", "started", "ended", "exit", "entrypoint"):
        table.add_column(column)
    for row in rows:
        table.add_row(*map(str, row.values()))
    out_console.print(table)


@main.command()
@click.argument("job_id", metavar="JOB")
@_address
@click.option("--follow", is_flag=True, help="Keep streaming until the job ends, and exit "
              "with the sweep's exit code.")
@_insecure
@user_errors
def logs(job_id: str, address: str, follow: bool, insecure: bool) -> None:
    """A job's log (the sweep's progress lines)."""
    from orchestrator.jobs import client as cluster

    client = _connect(address, insecure)
    if follow:
        sys.exit(cluster.follow(client, job_id, lambda text: click.echo(text, nl=False)))
    click.echo(cluster.call(f"reading job {job_id}'s log", client.get_job_logs, job_id,
                            retry_s=0), nl=False)


@main.command()
@click.argument("job_id", metavar="JOB")
@_address
@_insecure
@user_errors
def stop(job_id: str, address: str, insecure: bool) -> None:
    """Stop a job gracefully: the sweep gets SIGINT, Tune saves its state, and
    `sweep submit --resume` continues it."""
    from orchestrator.jobs import client as cluster

    client = _connect(address, insecure)
    if not cluster.call(f"stopping job {job_id}", client.stop_job, job_id, retry_s=0):
        info = cluster.call(f"reading job {job_id}", client.get_job_info, job_id, retry_s=0)
        click.echo(f"job {job_id} is not running ({info.status})", err=True)
        return
    info = cluster.wait_until_done(client, job_id, timeout_s=cluster.STOP_WAIT_S + 30)
    click.echo(f"job {job_id}: {info.status}", err=True)
