"""A user's own training loop as the trial (`train.function`), in the sweep like the
shared trainable: the spec's search space, schedulers, checkpoints, resume and results.

The function is called as `fn(config, trial)`: `config` is the user's `train:` keys
(searched ones drawn), `trial` the small object below (as Ray Tune's function API and
Optuna's `trial`): the loop never imports Ray. A scheduler's stop needs no code in it.
"""

from __future__ import annotations

import json
import math
import numbers
import tempfile
import time
from pathlib import Path
from typing import Any

from ray import tune

from orchestrator.spec.settings import LOOP_METRICS, STORAGE_ERROR, LoopTrialConfig
from orchestrator.trainable.tune_entry import (
    checkpoint_policy,
    device_and_threads,
    report_with_checkpoint,
    trial_index,
)

CHECKPOINT_FILE, META_FILE = "loop_checkpoint.pt", "loop_meta.json"
RESERVED = {"epoch", "checkpoint", "stop_reason", LOOP_METRICS, "trial_time_s", "device",
            "threads", "node_id", "trial_seed", "restored_from_epoch", "done", "config",
            "trial_id", "training_iteration", STORAGE_ERROR}


class Trial:
    """What a user's loop gets: `report` a row per epoch (with a checkpoint, any object
    torch.save writes), `restore` the latest checkpoint, and `seed`, `device`, `cpus`."""

    def __init__(self, config: LoopTrialConfig, trial_id: str, device: str, cpus: int):
        from orchestrator.trainable.trainer import trial_seed

        self.seed = trial_seed(config.seed, trial_index(trial_id))
        self.device, self.cpus = device, cpus
        self._metric = config.objective.metric
        # the last epoch the spec declares: its report is the trial's end (a scheduler
        # that counts to it stops the trial right there, before the loop returns)
        self._epochs = int(config.train.settings["epochs"])
        self._due = checkpoint_policy(config.checkpoint.every, config.checkpoint.interval_s)
        self._started = time.monotonic()
        self._time_before = 0.0  # trial time of earlier runs (a restored trial)
        self._restored_from = 0
        self._last: tuple[dict, Any] | None = None  # the last report: row, checkpoint
        self._checked = False
        self._context = {"device": device, "threads": cpus,
                         "node_id": _node_id(), "trial_seed": self.seed}

    @property
    def reported(self) -> bool:
        """Has the loop reported an epoch in this attempt?"""
        return self._last is not None

    def restore(self) -> Any:
        """The object last passed as `checkpoint=` (after a resume, a retried failure or
        a PBT exploit), or None on a fresh start."""
        import torch

        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as folder:
            meta = json.loads((Path(folder) / META_FILE).read_text())
            path = Path(folder) / CHECKPOINT_FILE
            try:
                state = torch.load(path, weights_only=True)
            except Exception:  # objects beyond tensors and containers: the trial's own file
                state = torch.load(path, weights_only=False)
        self._restored_from = int(meta["epoch"])
        self._time_before = float(meta.get("trial_time_s", 0.0))
        return state

    def report(self, epoch: int, checkpoint: Any = None, **metrics: Any) -> None:
        """One row of history: the epoch (1, 2, ...) and numbers; `checkpoint` is kept as
        the spec's checkpoint policy says (and always with the last report)."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 1:
            raise ValueError(f"trial.report: epoch is {epoch!r}, but must be an integer >= 1")
        row = {"epoch": int(epoch)}
        for name, value in metrics.items():
            if name in RESERVED:
                raise ValueError(f"trial.report: {name!r} is a name this tool reports "
                                 "itself; call your metric something else")
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"trial.report: {name} is {value!r}, but metrics must be "
                                 "numbers")
            row[name] = float(value)
        if not self._checked:
            if self._metric not in row:
                raise ValueError(
                    f"trial.report: the spec's metric {self._metric!r} is not among the "
                    f"reported keys ({', '.join(sorted(metrics)) or 'none'})")
            self._checked = True
        last = epoch >= self._epochs
        row.update(self._context, stop_reason=_end(row, metrics) if last else None,
                   restored_from_epoch=self._restored_from,
                   trial_time_s=self._time_before + time.monotonic() - self._started,
                   **{LOOP_METRICS: ",".join(sorted(metrics))})
        self._last = (row, checkpoint)
        if checkpoint is not None and (last or self._due(epoch)):
            self._report_with(row, checkpoint)
        else:
            tune.report(row)

    def _report_with(self, row: dict, checkpoint: Any) -> None:
        import torch

        with tempfile.TemporaryDirectory() as folder:
            torch.save(checkpoint, Path(folder) / CHECKPOINT_FILE)
            (Path(folder) / META_FILE).write_text(json.dumps(
                {"epoch": row["epoch"], "trial_time_s": row["trial_time_s"]}))
            report_with_checkpoint(row, folder)

    def finish(self) -> None:
        """The loop returned: its last row again, marked completed (the tables' stop
        reason), with its checkpoint kept."""
        if self._last is None:
            if self._restored_from >= self._epochs:
                # restored at its last epoch (a driver killed as the trial ended, before
                # Tune recorded its end): nothing was left to run, as for the shared
                # trainable, and its rows were reported before
                return
            raise ValueError("the loop returned without a trial.report: nothing to record")
        row, checkpoint = self._last
        if row["stop_reason"]:
            return  # its last epoch was reported as the end already
        final = {**row, "stop_reason": _end(row, row[LOOP_METRICS].split(","))}
        if checkpoint is not None:
            self._report_with(final, checkpoint)
        else:
            tune.report(final)


def _end(row: dict, names) -> str:
    """completed, or diverged when a metric of the last row is not finite."""
    return "completed" if all(math.isfinite(row[n]) for n in names if n in row) \
        else "diverged"


def _node_id() -> str | None:
    import ray

    return ray.get_runtime_context().get_node_id()


def train_loop(config: dict) -> None:
    """The Ray Tune function trainable of a user's loop."""
    from orchestrator.spec.user_code import import_ref
    from orchestrator.trainable.not_retried import fail_if_failed_before, first_report_pending
    from orchestrator.trainable.user_data import code_folders

    fail_if_failed_before()
    trial: Trial | None = None
    with first_report_pending(lambda: trial is not None and trial.reported):
        cfg = LoopTrialConfig.model_validate(config)
        device, cpus = device_and_threads()
        fn = import_ref(cfg.train.function, "train.function", code_folders(cfg.code))
        trial = Trial(cfg, tune.get_context().get_trial_id(), device, cpus)
        fn(dict(cfg.train.settings), trial)
        trial.finish()
