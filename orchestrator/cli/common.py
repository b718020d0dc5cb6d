"""What every `sweep` subcommand shares: the command group, consoles, one-line errors
and exit codes, spec loading and the printed plan.

Exit codes: `errors.ExitCode` (0 every trial ended without error; 1 some trials
errored; 2 bad input; 3 Ray could not be started or joined; 4 the storage refused a
write; 130 interrupted by Ctrl-C, 143 by SIGTERM: Tune's state is kept for `sweep
resume`). A one-line error's traceback shows with --debug.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

import click
from rich.console import Console

from orchestrator.errors import ExitCode, OrchestratorError, SweepWarning

# output piped to a file or CI log keeps its lines and columns whole
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
out_console = Console(width=None if sys.stdout.isatty() else 200)


def warning_line(line: str) -> None:
    """A line for the user on stderr: one line stays one line, however long the paths in
    it (a log is grepped by line)."""
    err_console.print(line, markup=False, soft_wrap=True)


_python_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, SweepWarning):
        warning_line(str(message))
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def show_warnings_as_lines() -> None:
    """The library's `SweepWarning`s, every one of them, as one plain line each (the
    library leaves how they look to its caller); other warnings as Python shows them."""
    global _python_showwarning
    if warnings.showwarning is not _show_warning:
        _python_showwarning = warnings.showwarning
        warnings.showwarning = _show_warning
    warnings.simplefilter("always", SweepWarning)


def user_errors(fn: Callable) -> Callable:
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
            sys.exit(ExitCode.INTERRUPTED)
        except OrchestratorError as exc:
            if debug:
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
    return wrapper


@contextlib.contextmanager
def writing(option: str, where) -> Iterator[None]:
    """A file or folder the user named that cannot be written (a path under a file, a
    read-only or full disk) is one line naming the option, not a traceback."""
    try:
        yield
    except OSError as exc:
        from pathlib import Path

        blocker = next((p for p in Path(where).absolute().parents if p.is_file()), None)
        why = (f"{blocker} is a file, not a folder" if blocker else
               f"{exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}")
        raise OrchestratorError(f"{option}: cannot write {where} ({why})") from None


def sweep_folder(name_or_path: str, storage: str | None):
    from orchestrator.results.folder import locate

    return locate(name_or_path, storage)


# --name/--storage/... are shorthands for --set KEY=VALUE
SHORTHANDS = {"name": "name", "storage": "storage", "num_samples": "num_samples",
              "max_concurrent": "max_concurrent_trials", "seed": "seed",
              "warm_start": "warm_start.from"}


def _overrides(spec_opts: dict) -> list[str]:
    """The shorthands as --set KEY=VALUE; a name or a storage is a string as given
    (quoted for YAML: `#`, `: ` or a leading `[` in a path stay in it)."""
    import json

    return [f"{SHORTHANDS[opt]}={json.dumps(value) if isinstance(value, str) else value}"
            for opt, value in spec_opts.items() if value is not None]


def load_spec_with(spec_path: str, sets: tuple[str, ...], **shorthands: Any):
    """The spec at `spec_path` with the shorthands and `sets` applied; an error in a
    value a shorthand gave names that option (--storage), not --set."""
    from orchestrator.errors import SpecError
    from orchestrator.spec.model import load_spec

    try:
        return load_spec(spec_path, [*_overrides(shorthands), *sets])
    except SpecError as err:
        given = {SHORTHANDS[o]: o for o, v in shorthands.items() if v is not None}
        overridden = {s.partition("=")[0].strip() for s in sets}
        if err.source == "--set" and err.key in given and err.key not in overridden:
            option = "--" + given[err.key].replace("_", "-")
            raise SpecError(option, "", err.problem) from None
        raise


def plan_text(spec, address: str | None = None, warm=None) -> str:
    """The plan of a sweep: what runs, how, and how many trials at once on this
    machine's embedded Ray (or on the cluster at `address`, counted once joined); with
    `warm`, what its warm start read (engine/warm_start.py)."""
    from orchestrator.cli.capacity import concurrency_line, per_trial_text, this_machine
    from orchestrator.spec.schedulers import SCHEDULERS

    options = ", ".join(f"{k}={v}" for k, v in spec.scheduler.options().items()
                        if v is not None)
    if address:  # a cluster's nodes are known once it is joined
        where = "the cluster" if address == "auto" else f"the cluster at {address}"
        concurrency = concurrency_line(spec, None, where)
    else:
        concurrency = concurrency_line(spec, [this_machine()], "this machine's embedded Ray")
    lines = [
        f"sweep {spec.name}: {spec.trial_count} trials "
        f"({spec.num_samples} samples x grid of {spec.grid_size})",
        f"  objective   {spec.mode} {spec.metric}" + (
            f" ({spec.train.task}, {spec.train.loss_name} loss)"
            if getattr(spec.train, "task", "classification") != "classification" else ""),
        f"  scheduler   {spec.scheduler.name} ({SCHEDULERS[spec.scheduler.name].summary})"
        + (f": {options}" if options else ""),
        f"  searcher    {spec.searcher.name}, seed {spec.seed}",
        f"  per trial   {per_trial_text(spec.resources)}, up to {spec.max_epochs} epochs",
        f"  concurrency {concurrency}",
        "  search      " + (", ".join(f"{k}~{d.kind}{list(d.args)}"
                                        for k, d in spec.search_space.items()) or "(none)"),
        f"  storage     {spec.storage}/{spec.name}",
    ]
    function = getattr(spec.train, "function", None)
    if function:
        lines.append(f"  loop        {function} (yours)")
    for section in ("dataset", "model") if not function else ():
        factory = getattr(getattr(spec.train, section), "factory", None)
        if factory:
            lines.append(f"  {section:<11} {factory} (yours)")
    if spec.code:
        lines.append("  code        " + ", ".join(spec.code) + " (shipped to every trial)")
        lines += [f"              {line}" for line in _shipping(spec)[0]]
    if warm is not None:
        lines.append(f"  warm start  {warm.summary()}")
    elif spec.warm_start:  # a resumed sweep: its searcher holds what it was given
        where = f" in {spec.warm_start.storage}" if spec.warm_start.storage else ""
        lines.append(f"  warm start  from {spec.warm_start.source}{where}")
    return "\n".join(lines)


def _shipping(spec) -> tuple[list[str], list[str]]:
    """(the plan's lines on what ships, warnings on what could not) of the spec's code."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.spec.shipped_code import listings, plan_lines, warnings

    try:
        found = listings(list(spec.code), spec.code_exclude)
    except OrchestratorError as exc:  # a resumed sweep whose folders moved: resume says so
        return [f"(cannot be listed: {exc})"], []
    return plan_lines(found), warnings(found)


def code_warnings(spec) -> list[str]:
    """A line for each file of the spec's code folders that cannot ship (a symlink
    leaving its folder, a named pipe): printed whatever --quiet says."""
    return _shipping(spec)[1] if spec.code else []


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ray-sweep-orchestrator")
def main() -> None:
    """Declarative hyperparameter sweeps of PyTorch models on Ray Tune."""
    show_warnings_as_lines()
