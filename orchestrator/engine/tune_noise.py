"""Ray Tune's warnings that say nothing to a user of this tool, kept off the screen.

Each is dropped for a reason that holds for every sweep this tool runs, and only that
message: anything else Tune logs still shows.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


class _UnreportedTrials(logging.Filter):
    """"Failed to fetch metrics for N trial(s): ... both result.json and progress.csv
    were not found" (`ray.tune.analysis.experiment_analysis`): Tune builds a ResultGrid
    at the end of `fit()` and at `Tuner.restore`, and a trial that never reported yet
    (pending when Ctrl-C came) has no result.json. One line per such trial, after every
    interrupt and resume; the results tables, not Tune's ResultGrid, are the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to fetch metrics for")


class _ResultFileNotCopiedYet(logging.Filter):
    """"Remote file not found: <trial>/result.json" (`ray.tune.logger.logger`): when a
    trial restarts from a checkpoint (PBT's exploit, a HyperBand pause, a resume),
    Tune's JSON logger first copies the trial's result.json from the storage into the
    driver's staging folder; when the driver has not copied it there yet, it says so and
    appends to the staging copy it still has, which reaches the storage later. Nothing
    is lost, and the results tables are written by the sink, not from that file."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not (message.startswith("Remote file not found:")
                    and message.endswith("result.json"))


FILTERS = {
    "ray.tune.analysis.experiment_analysis": _UnreportedTrials,
    "ray.tune.logger.logger": _ResultFileNotCopiedYet,
}


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Tune's harmless warnings (FILTERS) dropped within the block."""
    added = [(logging.getLogger(name), make()) for name, make in FILTERS.items()]
    for logger, noise in added:
        logger.addFilter(noise)
    try:
        yield
    finally:
        for logger, noise in added:
            logger.removeFilter(noise)
