"""The Hugging Face `Trainer` as the trial, in one callback:

    from orchestrator.integrations.transformers import SweepCallback

    def train(config, trial):
        cb = SweepCallback(trial)
        trainer = Trainer(model, TrainingArguments(num_train_epochs=config["epochs"],
                          report_to=[], ...), train_dataset=..., eval_dataset=...,
                          callbacks=[cb])
        trainer.train(resume_from_checkpoint=cb.ckpt_path)

At each epoch's end the callback has the Trainer log the epoch's training loss, evaluate,
and save its checkpoint folder (whatever the `*_strategy` arguments say); the epoch is
then reported once, numbered from 1, with the checkpoint folder packed into the trial's
checkpoint. After a resume, a retried failure or a PBT exploit `cb.ckpt_path` is that
folder again, for `train(resume_from_checkpoint=...)`: model, optimizer, scheduler,
random states and the Trainer's step. A scheduler's stop ends the trial at its report
(the code after `train` does not run).

Reported names: `train_loss` (the Trainer's `loss`), `lr` (`learning_rate`) and each
evaluation metric with `eval_` turned into `val_` (`eval_loss` -> `val_loss`); the
evaluation's timings (`*_runtime`, `*_per_second`) are left out."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.integrations import missing_extra
from orchestrator.integrations.checkpoint_files import pack, restored_folder, unpack

try:
    from transformers import TrainerCallback
except ModuleNotFoundError as exc:
    raise missing_extra("transformers", exc) from None

TRAIN_NAMES = {"loss": "train_loss", "learning_rate": "lr"}
TIMINGS = ("_runtime", "_per_second")


class SweepCallback(TrainerCallback):
    """Reports each epoch of a `transformers.Trainer` to the sweep's `trial` and
    checkpoints it there.

    Args:
        trial: the `trial` the sweep passes to your function.
        metrics: renames, `{name the Trainer logged: name reported}` (e.g.
            `{"eval_accuracy": "val_acc"}`), applied before the default names.

    `cb.ckpt_path` is None on a fresh start, else the restored checkpoint folder.
    """

    def __init__(self, trial: Any, metrics: Mapping[str, str] | None = None):
        self.trial = trial
        self.renames = dict(metrics or {})
        self.ckpt_path: str | None = None
        self._epoch_end = False
        self._train: dict[str, float] = {}  # the latest training log (loss, lr)
        self._eval: dict[str, float] | None = None  # the epoch end's evaluation
        state = trial.restore()
        if state is not None:
            if not isinstance(state, bytes):
                raise TypeError("SweepCallback: the trial's checkpoint is not a packed "
                                f"Trainer folder but a {type(state).__name__}; was it "
                                "written by another loop?")
            self.ckpt_path = str(unpack(state, restored_folder(self)))

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if str(getattr(args.save_strategy, "value", args.save_strategy)) == "best":
            raise ValueError("SweepCallback saves a checkpoint at every epoch's end: "
                             "TrainingArguments(save_strategy='best') would skip them; "
                             "use 'epoch' or 'no'")

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        # the Trainer logs, evaluates and saves next, in that order (then calls on_save)
        self._epoch_end = True
        control.should_log = control.should_evaluate = control.should_save = True
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping | None = None,
               **kwargs: Any) -> None:
        if logs and "loss" in logs:  # a training log, not an evaluation's or the summary
            self._train = {k: v for k, v in logs.items() if k in TRAIN_NAMES}

    def on_evaluate(self, args: Any, state: Any, control: Any,
                    metrics: Mapping | None = None, **kwargs: Any) -> None:
        if self._epoch_end:  # not one of the evaluations `eval_steps` asks for
            self._eval = dict(metrics or {})

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._epoch_end:  # a save `save_steps` asked for
            return
        self._epoch_end = False
        metrics = {self._name(k): v for k, v in {**self._train, **(self._eval or {})}.items()
                   if k != "epoch" and not k.endswith(TIMINGS)}
        metrics = {k: float(v) for k, v in metrics.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)}
        self._eval = None
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        checkpoint = pack(folder)
        if not args.load_best_model_at_end:  # the Trainer no longer needs it
            shutil.rmtree(folder, ignore_errors=True)
        # a scheduler's stop raises SystemExit here (Ray Tune ends the trial's thread)
        self.trial.report(epoch=round(state.epoch), checkpoint=checkpoint, **metrics)

    def _name(self, name: str) -> str:
        if name in self.renames:
            return self.renames[name]
        if name in TRAIN_NAMES:
            return TRAIN_NAMES[name]
        return "val_" + name.removeprefix("eval_") if name.startswith("eval_") else name
