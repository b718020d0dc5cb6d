"""`sweep refine`: from one sweep to the next. It reads files and writes one spec; it
starts no Ray and imports no torch (a user's factories are imported, as `sweep validate`
does, to check the spec it writes)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from orchestrator.cli.common import main, out_console, user_errors
from orchestrator.errors import OrchestratorError
from orchestrator.states import SweepStatus


def _write_new(path: Path, text: str, overwrite: bool) -> None:
    """`text` into `path` whole or not at all; an existing file is kept unless
    `overwrite` (the check and the write are one step: a hard link fails on a file that
    appeared meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        if overwrite:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise OrchestratorError(f"-o: {path} exists; give --overwrite to replace it, or "
                                    "another -o") from None
    finally:
        tmp.unlink(missing_ok=True)


@main.command()
@click.argument("name_or_path", metavar="NAME_OR_PATH")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="The next spec's file (default: ./<next name>.yaml, here).")
@click.option("--num-samples", type=click.IntRange(min=1),
              help="Trials of the next sweep (default: as many as this one).")
@click.option("--storage", help="Folder or URI that holds sweeps (NAME is looked up there; "
              "default ./sweeps).")
@click.option("--overwrite", is_flag=True, help="Replace the output file if it exists.")
@user_errors
def refine(name_or_path: str, output: str | None, num_samples: int | None,
           storage: str | None, overwrite: bool) -> None:
    """Write the next spec of a sweep: its search space moved as its trials say (dead
    regions cut, narrowed around the good trials, widened past an edge), each change
    with its evidence as a comment. The sweep's own spec and files are not touched."""
    from rich.table import Table

    from orchestrator.analysis.refine import next_name
    from orchestrator.analysis.refine import refine as refine_spec
    from orchestrator.analysis.report import rediagnosed
    from orchestrator.results.folder import locate
    from orchestrator.results.load import load_sweep

    tables = rediagnosed(load_sweep(locate(name_or_path, storage)))
    if tables.warning:
        click.echo(tables.warning, err=True)
    if tables.sweep.get("status") == SweepStatus.RUNNING:
        click.echo(f"sweep {tables.spec['name']} is running (or its driver died): refining "
                   f"from the {len(tables.trials)} trials it has so far", err=True)
    out = Path(output) if output else Path(f"{next_name(tables.spec['name'])}.yaml")
    refined = refine_spec(tables, out, num_samples, storage)
    try:
        _write_new(out, refined.text, overwrite)
    except OSError as exc:
        raise OrchestratorError(f"-o: cannot write {out} ({exc.strerror or exc})") from None

    table = Table(title=f"{refined.source} -> {refined.data['name']}", title_justify="left")
    for column in ("key", "before", "after", "why"):
        table.add_column(column, overflow="fold")
    for change in refined.changes:
        after = change.after if change.after != change.before else "(kept)"
        table.add_row(change.key, change.before, after, change.why)
    out_console.print(table)
    found = refined.evidence
    if not refined.space_moved:
        why = found.note or "no dead region, no edge, no narrower place for the good trials"
        out_console.print(f"the evidence supports no change to the search space: it is kept "
                          f"as it was ({why})", markup=False)
    for line in refined.taken_back:
        out_console.print(f"taken back (the spec refuses it): {line}", markup=False)
    out_console.print(f"wrote {out} (name {refined.data['name']}, seed {refined.data['seed']}, "
                      f"warm_start from {refined.source}); run it with: sweep run {out}",
                      markup=False)
