"""`sweep ls`: the sweeps in a storage folder (reads files, starts no Ray)."""

from __future__ import annotations

import click

from orchestrator.cli.common import main, out_console, user_errors
from orchestrator.spec.settings import DEFAULT_STORAGE


@main.command(name="ls")
@click.option("--storage", default=DEFAULT_STORAGE, show_default=True,
              help="Folder that holds sweeps.")
@user_errors
def list_command(storage: str) -> None:
    """The sweeps in a storage folder, one line each."""

    from rich.table import Table

    from orchestrator.results.catalog import list_sweeps

    frame = list_sweeps(storage)
    table = Table(title=f"{len(frame)} sweeps in {storage}", title_justify="left")
    for column in frame.columns:
        table.add_column(column)
    for row in frame.astype(object).fillna("-").itertuples(index=False):
        table.add_row(*map(str, row))
    out_console.print(table)
