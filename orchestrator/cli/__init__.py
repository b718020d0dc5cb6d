"""The `sweep` command: parses options and calls ONE library function per subcommand.

The subcommands live in `sweeps` (validate, run, resume), `export` (export), `catalog`
(ls), `analysis` (report, lr-find), `iterate` (refine), `tracking` (track) and `jobs`
(submit, jobs, logs, stop); `common` holds the group, one-line errors and warnings and
the exit codes; `progress` the live line a run prints.
"""

from orchestrator.cli import (  # noqa: F401 (they register)
    analysis,
    catalog,
    export,
    iterate,
    jobs,
    sweeps,
    tracking,
)
from orchestrator.cli.common import main

__all__ = ["main"]
