"""The project's error classes.

Everything a user can get wrong (spec, options, data files, sweep folders) raises an
`OrchestratorError`; the CLI prints its message as one line and exits with its
`exit_code` (2 for bad input).
"""

from __future__ import annotations

# what an error message quotes of a value the user gave: enough to find it, never a
# screenful (a YAML alias bomb expands to gigabytes)
SHOWN_CHARS = 300


def shown(value: object) -> str:
    """repr(value), cut to SHOWN_CHARS without building the whole repr first."""
    import reprlib

    short = reprlib.Repr()
    short.maxstring = short.maxother = SHOWN_CHARS
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 10
    short.maxlevel = 3
    text = short.repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none): what a
    one-line error quotes of an exception from a library."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class OrchestratorError(Exception):
    """A user-facing error: the message alone says what is wrong and where."""

    exit_code = 2


class SpecError(OrchestratorError):
    """A sweep spec (file or --set override) is invalid."""

    def __init__(self, source: str, key: str, problem: str):
        problem = problem if len(problem) <= 4 * SHOWN_CHARS else problem[:4 * SHOWN_CHARS] + "..."
        self.source, self.key, self.problem = source, key, problem
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + problem)


class RayUnavailable(OrchestratorError):
    """Ray could not be started or joined: the machine or the cluster, not the input."""

    exit_code = 3
