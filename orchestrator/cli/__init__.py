"""The `sweep` command: parses options and calls ONE library function per subcommand.

The subcommands live in `sweeps` (validate, run, resume), `analysis` (export, report,
ls, lr-find), `iterate` (refine), `tracking` (track) and `jobs` (submit, jobs, logs,
stop); `common` holds
the group, one-line errors and exit codes; `progress` the live line a run prints.
"""

from orchestrator.cli import analysis, iterate, jobs, sweeps, tracking  # noqa: F401 (they register)
from orchestrator.cli.common import main

__all__ = ["main"]
