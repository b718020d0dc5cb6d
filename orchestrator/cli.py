"""The `sweep` command: parses options and calls ONE library function per subcommand.

Exit codes: 0 every trial ended without error; 1 the sweep ran but some trials
errored (results are still written); 2 bad input, reported as one line; 3 Ray could
not be started or joined (one line; --debug shows the traceback); 130 the sweep was
interrupted (Ctrl-C) before every trial ended, 143 the same after SIGTERM (what
`ray job stop`, Kubernetes and Slurm send): Tune's state is kept for `sweep resume`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from rich.console import Console

from orchestrator.errors import OrchestratorError

EXIT_OK, EXIT_TRIALS_FAILED, EXIT_BAD_INPUT, EXIT_RAY_UNAVAILABLE = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM

# output piped to a file or CI log keeps its lines and columns whole
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
out_console = Console(width=None if sys.stdout.isatty() else 200)


def _user_errors(fn: Callable) -> Callable:
    """Turn project errors into one line on stderr and their exit code (2 for bad
    input); `--debug` lets them through with their traceback."""
    @click.option("--debug", is_flag=True, help="Show the traceback of an error.")
    @wraps(fn)
    def wrapper(*args: Any, debug: bool = False, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:  # before or after Tune's own handling of Ctrl-C
            if debug:
                raise
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except OrchestratorError as exc:
            if debug:
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
    return wrapper


def _overrides(spec_opts: dict) -> list[str]:
    """--name/--storage/... are shorthands for --set KEY=VALUE."""
    keys = {"name": "name", "storage": "storage", "num_samples": "num_samples",
            "max_concurrent": "max_concurrent_trials", "seed": "seed"}
    return [f"{keys[opt]}={value}" for opt, value in spec_opts.items() if value is not None]


def _load(spec_path: str, sets: tuple[str, ...], **shorthands: Any):
    from orchestrator.spec import load_spec

    return load_spec(spec_path, [*_overrides(shorthands), *sets])


def _plan(spec) -> str:
    from orchestrator.schedulers import SCHEDULERS

    options = ", ".join(f"{k}={v}" for k, v in spec.scheduler.options().items()
                        if v is not None)
    lines = [
        f"sweep {spec.name}: {spec.trial_count} trials "
        f"({spec.num_samples} samples x grid of {spec.grid_size})",
        f"  objective   {spec.mode} {spec.metric}",
        f"  scheduler   {spec.scheduler.name} ({SCHEDULERS[spec.scheduler.name].summary})"
        + (f": {options}" if options else ""),
        f"  searcher    {spec.searcher.name}, seed {spec.seed}",
        f"  per trial   {spec.resources.cpu:g} CPU, {spec.resources.gpu:g} GPU, "
        f"up to {spec.max_epochs} epochs",
        f"  concurrency {spec.max_concurrent_trials or 'as resources allow'}",
        "  search      " + (", ".join(f"{k}~{d.kind}{list(d.args)}"
                                        for k, d in spec.search_space.items()) or "(none)"),
        f"  storage     {spec.storage}/{spec.name}",
    ]
    return "\n".join(lines)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ray-sweep-orchestrator")
def main() -> None:
    """Declarative hyperparameter sweeps of PyTorch models on Ray Tune."""


@main.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any spec key (dotted; VALUE is YAML). Repeatable.")
@_user_errors
def validate(spec_path: str, sets: tuple[str, ...]) -> None:
    """Validate SPEC and print the plan."""
    click.echo(_plan(_load(spec_path, sets)))


@main.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--name", help="Sweep name (and results folder).")
@click.option("--storage", help="Folder that holds sweeps.")
@click.option("--num-samples", type=int, help="Samples to draw (grid: repeats of the grid).")
@click.option("--max-concurrent", type=int, help="Most trials running at once.")
@click.option("--seed", type=int, help="Seed of sampling and of every trial.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any spec key (dotted; VALUE is YAML). Repeatable.")
@click.option("--address", help="Join this Ray cluster instead of starting an embedded one.")
@click.option("--dry-run", is_flag=True, help="Validate and print the plan; run nothing.")
@click.option("--overwrite", is_flag=True, help="Replace an existing sweep of the same name.")
@click.option("--quiet", is_flag=True, help="No live progress view.")
@click.option("--stage-data", is_flag=True,
              help="Copy data files under this folder into the storage first (what a "
              "submitted job does, so that every node reads them).")
@_user_errors
def run(spec_path: str, sets: tuple[str, ...], address: str | None, dry_run: bool,
        overwrite: bool, quiet: bool, stage_data: bool, **shorthands: Any) -> None:
    """Run the sweep in SPEC to the end and write its results."""
    if address and address != "auto":
        from orchestrator.ray_session import use_token_to_join

        use_token_to_join()
    spec = _load(spec_path, sets, **shorthands)
    if stage_data:
        from orchestrator.cluster import stage_data as stage

        spec = stage(spec)
    if dry_run:
        click.echo(_plan(spec))
        return
    from orchestrator.runner import run_sweep

    if not quiet:
        err_console.print(_plan(spec))
    outcome = run_sweep(spec, address=address, overwrite=overwrite, console=err_console,
                        quiet=quiet)
    _finish(outcome, spec)


@main.command()
@click.argument("name_or_path", metavar="NAME_OR_PATH")
@click.option("--storage", help="Folder that holds sweeps (NAME is looked up there; "
              "default ./sweeps).")
@click.option("--address", help="Join this Ray cluster instead of starting an embedded one.")
@click.option("--resume-errored", is_flag=True,
              help="Run errored trials again from their last checkpoint.")
@click.option("--restart-errored", is_flag=True,
              help="Run errored trials again from scratch.")
@click.option("--quiet", is_flag=True, help="No live progress view.")
@_user_errors
def resume(name_or_path: str, storage: str | None, address: str | None, resume_errored: bool,
           restart_errored: bool, quiet: bool) -> None:
    """Continue an interrupted sweep (a folder, or a NAME in --storage): finished trials
    stay as they are, unfinished ones continue from their last checkpoint."""
    if resume_errored and restart_errored:
        raise OrchestratorError("--resume-errored, --restart-errored: give one or the other")
    errored = "resume" if resume_errored else "restart" if restart_errored else None
    if address and address != "auto":
        from orchestrator.ray_session import use_token_to_join

        use_token_to_join()
    from orchestrator.runner import plan_resume, resume_sweep
    from orchestrator.sweep_folder import locate

    plan = plan_resume(locate(name_or_path, storage))
    if plan.finished(errored):
        count = 0 if plan.trials is None else len(plan.trials)
        click.echo(f"sweep {plan.spec.name} already finished ({count} trials, {plan.errored} "
                   f"errored): nothing to resume in {plan.folder}", err=True)
        return
    if not quiet:
        err_console.print(f"resuming {plan.folder}\n{_plan(plan.spec)}")
    outcome = resume_sweep(plan, address=address, errored=errored, console=err_console,
                           quiet=quiet)
    _finish(outcome, plan.spec)


def _finish(outcome, spec) -> None:
    """The leaderboard, where the results are, and the exit code of the sweep."""
    from orchestrator.leaderboard import leaderboard
    from orchestrator.results.advice import advise

    out_console.print(leaderboard(outcome.trials, list(spec.search_space), spec.metric, spec.mode))
    for sentence in advise(outcome.trials, spec.resolved()):
        out_console.print(f"advice: {sentence}", markup=False)
    out_console.print(f"results: {outcome.results_dir}  ({outcome.elapsed_s:.1f}s)")
    if outcome.unfinished:
        click.echo(f"interrupted: {outcome.unfinished} of {len(outcome.trials)} trials did not "
                   f"finish; continue with `sweep resume {outcome.experiment_dir}`", err=True)
        sys.exit(EXIT_TERMINATED if outcome.signal == "SIGTERM" else EXIT_INTERRUPTED)
    if outcome.errored:
        click.echo(f"{outcome.errored} of {len(outcome.trials)} trials errored; "
                   f"see the error column of {outcome.results_dir}/trials.parquet", err=True)
        sys.exit(EXIT_TRIALS_FAILED)


def _sweep_folder(name_or_path: str, storage: str | None):
    from orchestrator.sweep_folder import locate

    return locate(name_or_path, storage)


@main.command()
@click.argument("name_or_path", metavar="NAME_OR_PATH")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="File to write (its suffix gives the format unless --format does).")
@click.option("--table", type=click.Choice(["trials", "history"]), default="trials",
              show_default=True)
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "jsonl"]))
@click.option("--storage", help="Folder that holds sweeps (NAME is looked up there).")
@_user_errors
def export(name_or_path: str, output: str, table: str, fmt: str | None,
           storage: str | None) -> None:
    """Write a sweep's trials or history table to a file (atomically)."""
    from pathlib import Path

    from orchestrator.results.export import declared_schema, export_table, format_of
    from orchestrator.results.load import load_sweep

    path = Path(output)
    fmt = format_of(path, fmt)
    tables = load_sweep(_sweep_folder(name_or_path, storage))
    frame = tables.trials if table == "trials" else tables.history
    export_table(frame, path, fmt, declared_schema(table, tables.metric))
    if tables.rebuilt:
        click.echo(f"rebuilt from Tune's trial folders: {', '.join(tables.rebuilt)} "
                   "(the sweep did not finish writing its tables)", err=True)
    click.echo(f"wrote {len(frame)} {table} rows to {path} ({fmt})", err=True)


@main.command()
@click.argument("name_or_path", metavar="NAME_OR_PATH")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder for the figures and report.html (default: the sweep's "
              "results/report).")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Trials in the leaderboard.")
@click.option("--open", "open_page", is_flag=True, help="Open report.html in a browser.")
@click.option("--storage", help="Folder that holds sweeps (NAME is looked up there).")
@_user_errors
def report(name_or_path: str, out_dir: str | None, top: int, open_page: bool,
           storage: str | None) -> None:
    """Summarise a sweep: leaderboard, counts, compute saved, figures and report.html."""
    from pathlib import Path

    from orchestrator.results.load import load_sweep
    from orchestrator.results.report import build_report, print_report

    tables = load_sweep(_sweep_folder(name_or_path, storage))
    out = Path(out_dir) if out_dir else tables.folder / "results" / "report"
    built = build_report(tables, out, top)
    print_report(out_console, tables, built, top)
    if tables.rebuilt:
        click.echo(f"rebuilt from Tune's trial folders: {', '.join(tables.rebuilt)}", err=True)
    if open_page:
        import webbrowser

        webbrowser.open(built.html_path.resolve().as_uri())


@main.command(name="ls")
@click.option("--storage", default="./sweeps", show_default=True,
              help="Folder that holds sweeps.")
@_user_errors
def list_command(storage: str) -> None:
    """The sweeps in a storage folder, one line each."""
    from pathlib import Path

    from rich.table import Table

    from orchestrator.results.catalog import list_sweeps

    frame = list_sweeps(Path(storage).expanduser())
    table = Table(title=f"{len(frame)} sweeps in {storage}", title_justify="left")
    for column in frame.columns:
        table.add_column(column)
    for row in frame.fillna("-").itertuples(index=False):
        table.add_row(*map(str, row))
    out_console.print(table)


# -- a Ray cluster's Jobs API ----------------------------------------------------------

_address = click.option("--address", required=True,
                        help="The cluster's dashboard, http://HOST:8265 (`ray dashboard "
                        "cluster.yaml` forwards it to http://127.0.0.1:8265).")
_insecure = click.option("--insecure", is_flag=True,
                         help="Allow plain HTTP to another machine without an auth token.")


@main.command()
@click.argument("spec_path", metavar="SPEC", required=False,
                type=click.Path(dir_okay=False))
@_address
@click.option("--storage", help="Absolute path of a folder every node sees (default: the "
              "spec's storage, which must then be absolute).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any spec key (dotted; VALUE is YAML). Repeatable.")
@click.option("--resume", "resume_name", metavar="NAME",
              help="Submit `sweep resume NAME` instead of a new sweep (no SPEC).")
@click.option("--wait", is_flag=True, help="Stream the job's log and exit with the "
              "sweep's exit code.")
@_insecure
@_user_errors
def submit(spec_path: str | None, address: str, storage: str | None, sets: tuple[str, ...],
           resume_name: str | None, wait: bool, insecure: bool) -> None:
    """Submit a sweep (or its resume) to a Ray cluster as a job."""
    import tempfile
    from pathlib import Path

    from orchestrator import cluster

    if bool(spec_path) == bool(resume_name):
        raise OrchestratorError("submit: give a SPEC to run, or --resume NAME, not both")
    # bad input first, before anything reaches the cluster
    if resume_name:
        if not storage or not Path(storage).is_absolute():
            raise OrchestratorError("--storage: --resume needs the sweep's storage on "
                                    "the cluster, as an absolute path")
    else:
        spec = _load(spec_path, sets)
        where = cluster.cluster_storage(spec, storage)
    client = cluster.connect(address, insecure)
    with tempfile.TemporaryDirectory(prefix="sweep-job-") as package:
        if resume_name:
            job = cluster.submit_job(client, cluster.resume_entrypoint(resume_name, storage),
                                     resume_name, storage, None)
        else:
            cluster.package_job(spec, where, Path(package))
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
@_user_errors
def jobs(address: str, insecure: bool) -> None:
    """The jobs submitted to a cluster, oldest first."""
    from rich.table import Table

    from orchestrator import cluster

    rows = cluster.job_rows(cluster.connect(address, insecure))
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
@_user_errors
def logs(job_id: str, address: str, follow: bool, insecure: bool) -> None:
    """A job's log (the sweep's progress lines)."""
    from orchestrator import cluster

    client = cluster.connect(address, insecure)
    if follow:
        sys.exit(cluster.follow(client, job_id, lambda text: click.echo(text, nl=False)))
    click.echo(cluster.call(f"reading job {job_id}'s log", client.get_job_logs, job_id,
                            retry_s=0), nl=False)


@main.command()
@click.argument("job_id", metavar="JOB")
@_address
@_insecure
@_user_errors
def stop(job_id: str, address: str, insecure: bool) -> None:
    """Stop a job gracefully: the sweep gets SIGINT, Tune saves its state, and
    `sweep submit --resume` continues it."""
    from orchestrator import cluster

    client = cluster.connect(address, insecure)
    if not cluster.call(f"stopping job {job_id}", client.stop_job, job_id, retry_s=0):
        info = cluster.call(f"reading job {job_id}", client.get_job_info, job_id, retry_s=0)
        click.echo(f"job {job_id} is not running ({info.status})", err=True)
        return
    info = cluster.wait_until_done(client, job_id, timeout_s=cluster.STOP_WAIT_S + 30)
    click.echo(f"job {job_id}: {info.status}", err=True)


@main.command(name="lr-find")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any spec key (dotted; VALUE is YAML). Repeatable.")
@click.option("--min-lr", type=float, default=1e-7, show_default=True)
@click.option("--max-lr", type=float, default=10.0, show_default=True)
@click.option("--steps", type=int, default=100, show_default=True,
              help="Mini-batches, the rate growing exponentially between them.")
@click.option("--out", "out_dir", default="lr_find", show_default=True,
              type=click.Path(file_okay=False), help="Folder for lr_find.png and .parquet.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@_user_errors
def lr_find(spec_path: str, sets: tuple[str, ...], min_lr: float, max_lr: float, steps: int,
            out_dir: str, as_json: bool) -> None:
    """The learning-rate range test on SPEC's fixed training settings: a suggested rate
    and a search range for optimizer.lr. Runs here, without Ray."""
    if min_lr <= 0 or min_lr >= max_lr:
        raise OrchestratorError(f"--min-lr, --max-lr: are {min_lr:g} and {max_lr:g}, but must "
                                "be 0 < min-lr < max-lr")
    if steps < 20:
        raise OrchestratorError(f"--steps: is {steps}, but must be >= 20")
    spec = _load(spec_path, sets)
    import json
    from pathlib import Path

    import pandas as pd
    import torch

    from orchestrator.results.atomic import write_atomic
    from orchestrator.results.plots import lr_find_plot
    from orchestrator.trainable.config import TrialConfig
    from orchestrator.trainable.lr_find import lr_range_test

    config = TrialConfig(train=spec.train, objective={"metric": spec.metric, "mode": spec.mode},
                         seed=spec.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = lr_range_test(config, min_lr, max_lr, steps, device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"step": range(1, len(result.lrs) + 1), "lr": result.lrs,
                          "loss": result.raw_losses, "smoothed_loss": result.losses})
    write_atomic(out / "lr_find.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
    lr_find_plot(result.lrs, result.losses, result.suggested_lr, result.low, result.high, out)
    summary = {
        "suggested_lr": result.reference_lr, "range": [result.reference_low,
                                                       result.reference_high],
        "effective_lr": result.suggested_lr, "effective_range": [result.low, result.high],
        "batch_size": spec.train.batch_size,
        "batch_scaling": spec.train.batch_scaling.model_dump(),
        "steps_run": len(result.lrs), "stopped_early": result.stopped_early,
        "search_space": result.search_line(), "device": device,
        "files": [str(out / "lr_find.png"), str(out / "lr_find.parquet")],
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    scaled = spec.train.batch_scaling.rule != "none"
    click.echo(f"suggested optimizer.lr {result.reference_lr:.3g} (the steepest stable "
               f"descent of the loss), search range [{result.reference_low:.3g}, "
               f"{result.reference_high:.3g}]")
    if scaled:
        click.echo(f"  at batch size {spec.train.batch_size} with {spec.train.batch_scaling.rule} "
                   f"scaling that is an effective rate of {result.suggested_lr:.3g} "
                   f"(optimizer.lr is the rate at batch size "
                   f"{spec.train.batch_scaling.reference_batch_size})")
    click.echo(f"  search space:  {result.search_line()}")
    click.echo(f"  {len(result.lrs)} steps on {device}"
               + (" (stopped early: the loss blew up)" if result.stopped_early else "")
               + f"; plot and data in {out}/")
