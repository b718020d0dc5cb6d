"""The `sweep` command: parses options and calls ONE library function per subcommand.

The subcommands live in cli_sweeps (validate, run, resume), cli_analysis (export,
report, ls, lr-find) and cli_jobs (submit, jobs, logs, stop); cli_common holds the
group, one-line errors and exit codes.
"""

from orchestrator import cli_analysis, cli_jobs, cli_sweeps  # noqa: F401 (they register)
from orchestrator.cli_common import main

__all__ = ["main"]
