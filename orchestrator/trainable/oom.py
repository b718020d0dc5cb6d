"""Out of (GPU) memory: telling it from other errors, freeing what a failed step held,
and the one line a trial ends with when no batch fits.

The trainer halves its batch on it (trainer.py); a user's own loop owns its batch and
gets one line saying so (loop.py). docs/tuning.md: a batch that does not fit is not a bad
setting; take a smaller batch and scale the rate by the same rule.
"""

from __future__ import annotations

import gc

import torch

from orchestrator.errors import SHOWN_CHARS, first_line, shown


class TrialOutOfMemory(Exception):
    """A trial ran out of memory at every batch it may use (or in a user's loop, which
    owns its batch): its message is the one line the trials table shows."""


def out_of_memory(exc: BaseException) -> bool:
    """CUDA's out-of-memory error (`torch.cuda.OutOfMemoryError`), or the RuntimeError
    whose text says "out of memory" that older builds and other backends raise."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_memory(device: torch.device) -> None:
    """Give back what a failed step held, once its exception (and the frames its
    traceback kept alive) is gone: Python's cycles, then CUDA's cached blocks."""
    gc.collect()
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def halved(batch_size: int, floor: int) -> int | None:
    """The next batch to try after `batch_size` ran out of memory, or None under
    `floor` (train.oom.min_batch_size)."""
    smaller = batch_size // 2
    return smaller if smaller >= floor else None


def floor_reached(what: str, tried: list[int], floor: int, exc_line: str) -> TrialOutOfMemory:
    """The one line of a trial that ran out of memory at every batch it may try."""
    sizes = ", ".join(str(b) for b in tried)
    return TrialOutOfMemory(
        f"out of memory {what} at every batch size tried ({sizes}); half of "
        f"{tried[-1]} is under train.oom.min_batch_size ({floor}): give the trial more GPU "
        f"memory (fewer trials per GPU: resources.gpu) or a smaller model [{exc_line}]")


def describe(exc: BaseException) -> str:
    """`Type: first line` of an out-of-memory error (cut: CUDA's runs long), for the one
    line that quotes it."""
    text = f"{type(exc).__name__}: {first_line(exc)}"
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def in_loop(function: str, settings: dict, exc: BaseException) -> TrialOutOfMemory:
    """The one line of a user's loop that ran out of memory: the loop owns its batch,
    so the sweep cannot halve it as it does the shared trainable's."""
    given = ", ".join(f"{key}={shown(value)}" for key, value in sorted(settings.items()))
    if len(given) > SHOWN_CHARS:
        given = given[:SHOWN_CHARS] + "..."
    return TrialOutOfMemory(
        f"out of memory in your loop {function} with {given or 'no settings'}: the loop "
        "owns its batch, so the sweep cannot halve it; catch torch.cuda.OutOfMemoryError "
        "in the loop and go on at half the batch with the rate times sqrt(1/2) (and pass "
        "trial.report(..., batch_size=...)), search smaller batches, or give each trial "
        f"more GPU memory (resources.gpu) [{describe(exc)}]")
