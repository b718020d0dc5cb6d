"""The sweep in TensorBoard: one event-file folder per trial under
`<sweep>/tensorboard/<trial id>`, a scalar per epoch and metric (step = epoch), and the
HParams plugin's summaries (the trial's settings, the metrics' names, its end) so that
TensorBoard's HParams tab lists the sweep's trials side by side.

Event files are appended to and cannot be edited, so the folder is derived data: it is
written again from the rows whenever a driver or `sweep track` opens it. That is what
keeps a resumed sweep free of duplicate points."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.results import schema
from orchestrator.tracking.mirror import SweepIdentity, epoch_metrics, present

FOLDER = "tensorboard"


def _hparam(value: Any) -> float | int | str | bool:
    return value if isinstance(value, bool | int | float | str) else str(value)


class TensorBoardTracker:
    key = "tracking.tensorboard"

    def __init__(self, sweep_folder: Path):
        self.root = Path(sweep_folder) / FOLDER
        self.where = str(self.root)
        self.writers: dict[str, Any] = {}
        self.last: dict[str, int] = {}
        self.ends: dict[str, tuple] = {}
        self.metrics: list[str] = []

    def open(self, sweep: SweepIdentity) -> None:
        self.sweep = sweep
        # the sweep's metric first (the HParams tab sorts and colours by the first one),
        # then the losses and the task's metrics
        task = (sweep.spec.get("train") or {}).get("task", "classification")
        reported = ("val_acc",) if task == "classification" else ("val_r2", "val_mae")
        self.metrics = list(dict.fromkeys([sweep.metric, "val_loss", "train_loss",
                                           *reported]))
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)

    def last_epoch(self, trial_id: str) -> int | None:
        return self.last.get(trial_id)

    def end_state(self, trial_id: str) -> tuple | None:
        return self.ends.get(trial_id)

    def _writer(self, trial_id: str, settings: dict):
        if trial_id in self.writers:
            return self.writers[trial_id]
        from tensorboardX import SummaryWriter
        from tensorboardX.summary import hparams

        writer = SummaryWriter(logdir=str(self.root / trial_id), flush_secs=30)
        # the searched keys only: forty fixed settings would bury them in the HParams tab
        shown = {k: v for k, v in settings.items() if k in self.sweep.searched} or settings
        experiment, start, _ = hparams({k: _hparam(v) for k, v in shown.items()},
                                       {m: 0.0 for m in self.metrics})
        writer.file_writer.add_summary(experiment)
        writer.file_writer.add_summary(start)
        self.writers[trial_id] = writer
        return writer

    def log_epochs(self, trial_id: str, settings: dict, rows: list[dict]) -> None:
        writer = self._writer(trial_id, settings)
        for row in rows:
            for name, value in epoch_metrics(row).items():
                writer.add_scalar(name, value, global_step=int(row["epoch"]))
            self.last[trial_id] = int(row["epoch"])
        writer.flush()  # a live TensorBoard shows the epoch now, not in 30 s

    def end_trial(self, trial_id: str, trial: Mapping[str, Any], end: tuple) -> None:
        from tensorboardX.summary import hparams

        writer = self.writers.pop(trial_id, None)
        self.ends[trial_id] = end
        if writer is None:
            return  # a trial with no epoch has no curve to show
        best = schema.best_column(self.sweep.metric)
        if present(trial.get(best)):
            step = trial.get("best_epoch")
            writer.add_scalar(best, float(trial[best]),
                              global_step=int(step) if present(step) else 0)
        _, _, session_end = hparams({}, {})
        writer.file_writer.add_summary(session_end)
        writer.close()

    def finish(self, trials: list[Mapping[str, Any]], advice: list[str],
               interrupted: bool) -> None:
        self.close()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
