"""Lightning's `Trainer` as the trial, in one callback:

    from orchestrator.integrations.lightning import SweepCallback

    def train(config, trial):
        cb = SweepCallback(trial)
        trainer = L.Trainer(max_epochs=config["epochs"], callbacks=[cb], ...)
        trainer.fit(module, train_loader, val_loader, ckpt_path=cb.ckpt_path)

Each epoch is reported once, numbered from 1, when it has ended: Lightning 2 runs the
epoch's validation before `on_train_epoch_end`, and a `Checkpoint` callback's
`on_train_epoch_end` runs after the module's own, so the metrics then hold this epoch's
training values and its validation values together. (Reported from
`on_validation_epoch_end`, the epoch-level training loss is not yet there at epoch 1
and one epoch stale after it.) The sanity check's validation is never reported.

The checkpoint is Lightning's own file (`trainer.save_checkpoint`), kept by the trial
as the sweep's checkpoint policy says; after a resume, a retried failure or a PBT
exploit `cb.ckpt_path` is that file again, for `fit(ckpt_path=...)`. A scheduler's stop
ends the trial at its report: the stop leaves `fit` through Lightning's own handling of
an interruption (its teardown runs; the code after `fit` does not)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.integrations import missing_extra
from orchestrator.integrations.checkpoint_files import restored_folder

try:
    from lightning.pytorch.callbacks import Checkpoint
except ModuleNotFoundError as exc:
    raise missing_extra("lightning", exc) from None

CHECKPOINT_FILE = "lightning.ckpt"


class SweepCallback(Checkpoint):
    """Reports each epoch of a Lightning `Trainer` to the sweep's `trial` and checkpoints
    it there.

    Args:
        trial: the `trial` the sweep passes to your function.
        metrics: renames, `{name Lightning logged: name reported}` (e.g.
            `{"val/acc": "val_acc"}`); every other logged metric keeps its name.

    It is a Lightning `Checkpoint` callback, so Lightning adds no `ModelCheckpoint` of its
    own (leave `enable_checkpointing` at its default, True); `cb.ckpt_path` is None on a
    fresh start, else the restored checkpoint's file.
    """

    def __init__(self, trial: Any, metrics: Mapping[str, str] | None = None):
        super().__init__()
        self.trial = trial
        self.renames = dict(metrics or {})
        self.ckpt_path: str | None = None
        self._validated = False  # a validation ran in this epoch (not the sanity check)
        state = trial.restore()
        if state is not None:
            if not isinstance(state, bytes):
                raise TypeError("SweepCallback: the trial's checkpoint is not a Lightning "
                                f"file but a {type(state).__name__}; was it written by "
                                "another loop?")
            path = restored_folder(self) / CHECKPOINT_FILE
            path.write_bytes(state)
            self.ckpt_path = str(path)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        # an epoch without validation (check_val_every_n_epoch > 1) has no row; a
        # trainer that never validates reports every epoch
        if not self._validated and trainer.enable_validation:
            return
        self._validated = False
        metrics = {}
        for name, value in trainer.callback_metrics.items():
            number = _number(value)
            if number is not None:
                metrics[self.renames.get(name, name)] = number
        with tempfile.TemporaryDirectory(prefix="sweep-lightning-") as folder:
            path = Path(folder) / CHECKPOINT_FILE
            trainer.save_checkpoint(path, weights_only=False)  # the whole state: resumable
            checkpoint = path.read_bytes()
        # a scheduler's stop raises SystemExit here (Ray Tune ends the trial's thread)
        self.trial.report(epoch=trainer.current_epoch + 1, checkpoint=checkpoint, **metrics)


def _number(value: Any) -> float | None:
    """A logged value as a float: a number or a one-element tensor; None otherwise."""
    if hasattr(value, "numel"):
        if value.numel() != 1:
            return None
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)  # NaN and inf too: the diagnosis reads them as a divergence
