"""`sweep validate`, `sweep run`, `sweep resume` and `sweep extend`."""

from __future__ import annotations

import sys
from typing import Any

import click

from orchestrator.cli.common import (
    code_warnings,
    err_console,
    load_spec_with,
    main,
    out_console,
    plan_text,
    user_errors,
    warning_line,
)
from orchestrator.errors import ExitCode, OrchestratorError
from orchestrator.results import schema


@main.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any spec key (dotted; VALUE is YAML). Repeatable.")
@user_errors
def validate(spec_path: str, sets: tuple[str, ...]) -> None:
    """Validate SPEC and print the plan (with what of your code ships)."""
    spec = load_spec_with(spec_path, sets)
    click.echo(plan_text(spec))
    for line in code_warnings(spec):
        warning_line(line)


@main.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--name", help="Sweep name (and results folder).")
@click.option("--storage", help="Folder that holds sweeps.")
@click.option("--num-samples", type=int, help="Samples to draw (grid: repeats of the grid).")
@click.option("--max-concurrent", type=int, help="Most trials running at once.")
@click.option("--seed", type=int, help="Seed of sampling and of every trial.")
@click.option("--warm-start", metavar="NAME_OR_PATH",
              help="Start from an earlier sweep (warm_start.from): its trials given to the "
              "searcher, its best configuration run first.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any spec key (dotted; VALUE is YAML). Repeatable.")
@click.option("--address", help="Join this Ray cluster instead of starting an embedded one.")
@click.option("--dry-run", is_flag=True, help="Validate and print the plan; run nothing.")
@click.option("--overwrite", is_flag=True, help="Replace an existing sweep of the same name.")
@click.option("--quiet", is_flag=True, help="No live progress view.")
@click.option("--stage-data", is_flag=True,
              help="Copy data files under this folder into the storage first (what a "
              "submitted job does, so that every node reads them).")
@user_errors
def run(spec_path: str, sets: tuple[str, ...], address: str | None, dry_run: bool,
        overwrite: bool, quiet: bool, stage_data: bool, **shorthands: Any) -> None:
    """Run the sweep in SPEC to the end and write its results."""
    if address and address != "auto":
        from orchestrator.ray_auth import use_token_to_join

        use_token_to_join()
    spec = load_spec_with(spec_path, sets, **shorthands)
    if stage_data:
        from orchestrator.jobs.staging import stage_data as stage

        spec = stage(spec)
    from orchestrator.engine.warm_start import plan_warm_start

    warm = plan_warm_start(spec)  # the earlier sweep read once, before Ray starts
    if dry_run:
        click.echo(plan_text(spec, address, warm))
    elif not quiet:
        err_console.print(plan_text(spec, address, warm), markup=False)
    for line in code_warnings(spec):
        warning_line(line)
    if dry_run:
        return
    from orchestrator.engine.run import run_sweep

    outcome = run_sweep(spec, address=address, overwrite=overwrite,
                        callbacks=_progress(spec, quiet, extra=warm.extra_trials if warm else 0),
                        warm=warm)
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
@user_errors
def resume(name_or_path: str, storage: str | None, address: str | None, resume_errored: bool,
           restart_errored: bool, quiet: bool) -> None:
    """Continue an interrupted sweep (a folder, or a NAME in --storage): finished trials
    stay as they are, unfinished ones continue from their last checkpoint."""
    if resume_errored and restart_errored:
        raise OrchestratorError("--resume-errored, --restart-errored: give one or the other")
    errored = "resume" if resume_errored else "restart" if restart_errored else None
    if address and address != "auto":
        from orchestrator.ray_auth import use_token_to_join

        use_token_to_join()
    from orchestrator.engine.resume import plan_resume, resume_sweep
    from orchestrator.results.folder import locate

    plan = plan_resume(locate(name_or_path, storage))
    if plan.finished(errored):
        count = 0 if plan.trials is None else len(plan.trials)
        click.echo(f"sweep {plan.spec.name} already finished ({count} trials, {plan.errored} "
                   f"errored): nothing to resume in {plan.folder}", err=True)
        return
    for warning in plan.warnings:
        warning_line(warning)
    if not quiet:
        err_console.print(f"resuming {plan.folder}\n{plan_text(plan.spec, address)}")
    outcome = resume_sweep(plan, address=address, errored=errored,
                           callbacks=_progress(plan.spec, quiet, plan.stop_reasons,
                                               before=plan.trials))
    _finish(outcome, plan.spec)


@main.command()
@click.argument("name_or_path", metavar="NAME_OR_PATH")
@click.option("--num-samples", type=click.IntRange(min=1), required=True,
              help="Trials to add.")
@click.option("--storage", help="Folder or URI that holds sweeps (NAME is looked up there; "
              "default ./sweeps).")
@click.option("--address", help="Join this Ray cluster instead of starting an embedded one.")
@click.option("--quiet", is_flag=True, help="No live progress view.")
@user_errors
def extend(name_or_path: str, num_samples: int, storage: str | None, address: str | None,
           quiet: bool) -> None:
    """Add N trials to a finished sweep, in its own folder and tables: its searcher goes
    on from every trial that ended (Optuna learns from them; a random search draws
    configurations none of them ran). A killed extend is continued by `sweep resume`."""
    if address and address != "auto":
        from orchestrator.ray_auth import use_token_to_join

        use_token_to_join()
    from orchestrator.engine.extend import extend_sweep, plan_extend
    from orchestrator.results.folder import locate

    plan = plan_extend(locate(name_or_path, storage), num_samples)
    if not quiet:
        err_console.print(f"{plan.summary()}\n{plan_text(plan.spec, address)}",
                          markup=False)
    outcome = extend_sweep(plan, address=address,
                           callbacks=_progress(plan.spec, quiet, plan.stop_reasons,
                                               before=plan.trials))
    _finish(outcome, plan.spec)


def _progress(spec, quiet: bool, ended: dict[str, str] | None = None, extra: int = 0,
              before=None) -> list:
    """The live progress view (a Tune callback), unless --quiet; `extra` trials beyond
    the spec's count (a warm start's re-runs under a grid); `before`, the trials table of
    earlier segments (its best is the sweep's best so far)."""
    if quiet:
        return []
    from orchestrator.cli.progress import ProgressView

    column = schema.best_column(spec.metric)
    values = before[column].dropna() if before is not None and column in before else ()
    best = (values.max() if spec.mode == "max" else values.min()) if len(values) else None
    return [ProgressView(err_console, spec.trial_count + extra, spec.metric, spec.mode,
                         ended=ended or {}, resources=spec.resources,
                         max_concurrent=spec.max_concurrent_trials,
                         best=None if best is None else float(best))]


def _finish(outcome, spec) -> None:
    """The leaderboard, where the results are, and the exit code of the sweep."""
    from orchestrator.analysis.advice import advise
    from orchestrator.analysis.leaderboard import leaderboard
    from orchestrator.engine.run import resume_command

    out_console.print(leaderboard(outcome.trials, list(spec.search_space), spec.metric, spec.mode))
    for sentence in advise(outcome.trials, spec.resolved(), outcome.history):
        out_console.print(f"advice: {sentence}", markup=False)
    out_console.print(f"results: {outcome.results_dir}  ({outcome.elapsed_s:.1f}s)")
    if outcome.interrupted:
        what = (f"{outcome.unfinished} of {len(outcome.trials)} trials did not finish"
                if outcome.unfinished else "stopped before the sweep's end")
        click.echo(f"interrupted: {what}; continue with "
                   f"`{resume_command(outcome.location, spec)}`", err=True)
        sys.exit(ExitCode.TERMINATED if outcome.signal == "SIGTERM" else ExitCode.INTERRUPTED)
    if outcome.errored:
        click.echo(f"{outcome.errored} of {len(outcome.trials)} trials errored; "
                   f"see the error column of {outcome.results_dir}/trials.parquet", err=True)
        sys.exit(ExitCode.TRIALS_FAILED)
