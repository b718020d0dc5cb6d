"""`sweep report` and `sweep lr-find`: they read files or train in-process, and start
no Ray."""

from __future__ import annotations

import click

from orchestrator.cli.common import (
    load_spec_with,
    main,
    out_console,
    sweep_folder,
    user_errors,
    writing,
)

# here, not in analysis.report: `sweep --help` should not import pandas
REPORT_FORMATS = ("html", "png")


@main.command()
@click.argument("name_or_path", metavar="NAME_OR_PATH")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder for the figures and report.html (default: the sweep's "
              "results/report).")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Trials in the leaderboard.")
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="html",
              show_default=True, help="html: interactive charts in report.html (offline, "
              "one file); png: PNG figures, embedded in a static report.html too.")
@click.option("--open", "open_page", is_flag=True, help="Open report.html in a browser.")
@click.option("--storage", help="Folder that holds sweeps (NAME is looked up there).")
@user_errors
def report(name_or_path: str, out_dir: str | None, top: int, fmt: str, open_page: bool,
           storage: str | None) -> None:
    """Summarise a sweep: leaderboard, counts, compute saved, charts and report.html."""
    from pathlib import Path

    from orchestrator.analysis.report import build_report, print_report, rediagnosed
    from orchestrator.results.load import load_sweep

    tables = rediagnosed(load_sweep(sweep_folder(name_or_path, storage)))
    if tables.warning:  # sweep.json is missing
        click.echo(tables.warning, err=True)
    if out_dir:
        out = Path(out_dir)
    elif tables.folder.local:
        out = tables.folder.local / "results" / "report"
    else:  # an object store: the figures and the page are written here
        out = Path(f"{tables.spec['name']}-report")
    with writing("--out", out):
        built = build_report(tables, out, top, fmt)
    print_report(out_console, tables, built, top)
    if tables.rebuilt:
        click.echo(f"rebuilt from Tune's trial folders: {', '.join(tables.rebuilt)}", err=True)
    if open_page:
        import webbrowser

        webbrowser.open(built.html_path.resolve().as_uri())


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
@user_errors
def lr_find(spec_path: str, sets: tuple[str, ...], min_lr: float, max_lr: float, steps: int,
            out_dir: str, as_json: bool) -> None:
    """The learning-rate range test on SPEC's fixed training settings: a suggested rate
    and a search range for optimizer.lr. Runs here, without Ray."""
    from pathlib import Path

    from orchestrator.engine.lr_find import find_learning_rate

    spec = load_spec_with(spec_path, sets)
    with writing("--out", out_dir):  # before training: a folder that cannot be made
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    found = find_learning_rate(spec, min_lr, max_lr, steps, out_dir)
    if as_json:
        import json

        click.echo(json.dumps(found))
        return
    scaling = spec.train.batch_scaling
    low, high = found["range"]
    click.echo(f"suggested optimizer.lr {found['suggested_lr']:.3g} (the loss's steepest "
               f"descent, at least 3x under its minimum), search range [{low:.3g}, "
               f"{high:.3g}]")
    if scaling.rule != "none":
        click.echo(f"  at batch size {spec.train.batch_size} with {scaling.rule} scaling that "
                   f"is an effective rate of {found['effective_lr']:.3g} (optimizer.lr is the "
                   f"rate at batch size {scaling.reference_batch_size})")
    click.echo(f"  search space:  {found['search_space']}")
    click.echo(f"  {found['steps_run']} steps on {found['device']}"
               + (" (stopped early: the loss blew up)" if found["stopped_early"] else "")
               + f"; plot and data in {out_dir}/")
