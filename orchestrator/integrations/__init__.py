"""Callbacks that put a training framework's own trainer into the sweep, one line each:
Lightning (`orchestrator.integrations.lightning`) and the Hugging Face Trainer
(`orchestrator.integrations.transformers`). Each adapts the framework's hooks to the
`trial` object a user's loop receives (`orchestrator.trainable.loop.Trial`): it reports
each epoch's metrics, checkpoints in the framework's own format through the trial, and
hands the restored checkpoint back as the path the framework resumes from.

Each module is imported only by the user's code that names it, and needs its extra."""

from __future__ import annotations


def missing_extra(extra: str, error: ModuleNotFoundError) -> ModuleNotFoundError:
    """The one line a user sees when a framework is not installed: what to install."""
    package = (error.name or extra).split(".")[0]
    return ModuleNotFoundError(
        f"{package} is not installed here: pip install 'ray-sweep-orchestrator[{extra}]'",
        name=package)
