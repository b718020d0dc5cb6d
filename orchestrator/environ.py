"""Library settings that live in environment variables (Ray Tune's, MLflow's), set for a
stretch of code and put back after it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def defaults(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in os.environ for the body of the `with`, except those the process
    already sets (the user's own choice wins); the process's own values after it."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
