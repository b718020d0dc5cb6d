"""The project's error classes.

Everything a user can get wrong (spec, options, data files, sweep folders) raises an
`OrchestratorError`; the CLI prints its message as one line and exits with its
`exit_code` (2 for bad input).
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """A user-facing error: the message alone says what is wrong and where."""

    exit_code = 2


class SpecError(OrchestratorError):
    """A sweep spec (file or --set override) is invalid."""

    def __init__(self, source: str, key: str, problem: str):
        self.source, self.key, self.problem = source, key, problem
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + problem)


class RayUnavailable(OrchestratorError):
    """Ray could not be started or joined: the machine or the cluster, not the input."""

    exit_code = 3
