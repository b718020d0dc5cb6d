"""`sweep export`: a sweep's table to a file (reads files, starts no Ray)."""

from __future__ import annotations

import click

from orchestrator.cli.common import main, sweep_folder, user_errors, writing
from orchestrator.results.schema import EXPORT_FORMATS, TABLES


@main.command()
@click.argument("name_or_path", metavar="NAME_OR_PATH")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="File to write (its suffix gives the format unless --format does).")
@click.option("--table", type=click.Choice(TABLES), default="trials", show_default=True)
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS))
@click.option("--storage", help="Folder that holds sweeps (NAME is looked up there).")
@user_errors
def export(name_or_path: str, output: str, table: str, fmt: str | None,
           storage: str | None) -> None:
    """Write a sweep's trials or history table to a file (atomically)."""
    from pathlib import Path

    from orchestrator.results.export import export_sweep

    folder = sweep_folder(name_or_path, storage)
    with writing("-o", output):
        written = export_sweep(folder, Path(output), table, fmt)
    if written.warning:  # sweep.json is missing
        click.echo(written.warning, err=True)
    if written.rebuilt:
        click.echo(f"rebuilt from Tune's trial folders: {', '.join(written.rebuilt)} "
                   "(the sweep did not finish writing its tables)", err=True)
    click.echo(f"wrote {written.rows} {table} rows to {output} ({written.fmt})", err=True)
