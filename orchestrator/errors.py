"""The project's one error base class.

Everything a user can get wrong (spec, options, data files) raises an
`OrchestratorError`; the CLI prints its message as one line and exits with 2.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """A user-facing error: the message alone says what is wrong and where."""


class SpecError(OrchestratorError):
    """A sweep spec (file or --set override) is invalid."""

    def __init__(self, source: str, key: str, problem: str):
        self.source, self.key, self.problem = source, key, problem
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + problem)
