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

from orchestrator.spec.settings import SIGNALS, LoopTrialConfig
from orchestrator.states import LOOP_METRICS, STORAGE_ERROR, StopReason
from orchestrator.trainable.not_retried import DataOrCodeError
from orchestrator.trainable.tune_entry import (
    checkpoint_policy,
    placement,
    report_with_checkpoint,
    trial_index,
)

CHECKPOINT_FILE, META_FILE = "loop_checkpoint.pt", "loop_meta.json"
RESERVED = {"epoch", "checkpoint", "stop_reason", LOOP_METRICS, "trial_time_s", "device",
            "threads", "node_id", "trial_seed", "restored_from_epoch", "done", "config",
            "trial_id", "training_iteration", STORAGE_ERROR, "batch_size_used",
            "oom_halvings", "gpu_ids", "started_at", "ended_at", "workers", *SIGNALS}


class ReportError(DataOrCodeError):
    """A loop's `trial.report` that cannot be recorded: a mistake of the loop's code,
    which would be made again on every try (not retried, `not_retried`)."""


def out_of_order(epoch: int, last: int | None, restored: int) -> str | None:
    """Why a report of `epoch` cannot follow the last one (`last`, None before the first
    of this attempt) or the checkpoint the loop restored (`restored`, 0 when none), or
    None. Epochs must increase: a repeated or earlier epoch would overwrite a row of the
    history, and the schedulers take the epoch as their time, which must not go back.
    Gaps are allowed (a loop that validates every k-th epoch reports k, 2k, ...): the
    schedulers' milestones are reached at the first epoch at or past them."""
    if last is not None and epoch <= last:
        return (f"trial.report: epoch {epoch} reported after epoch {last}; epochs must "
                "increase from one report to the next")
    if last is None and epoch <= restored:
        return (f"trial.report: epoch {epoch} reported after restoring the checkpoint of "
                f"epoch {restored}; a restored loop goes on from the epoch after its "
                f"checkpoint's ({restored + 1})")
    return None


class Trial:
    """What a user's loop gets: `report` a row per epoch (with a checkpoint, any object
    torch.save writes), `restore` the latest checkpoint, `watch` the training's own
    signals, and `seed`, `device`, `cpus`."""

    def __init__(self, config: LoopTrialConfig, trial_id: str, device: str, cpus: int,
                 gpu_ids: str | None = None):
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
        self._watched: tuple[Any, tuple] | None = None  # Signals, the hooks' handles
        self._context = {"device": device, "threads": cpus, "gpu_ids": gpu_ids,
                         "node_id": _node_id(), "trial_seed": self.seed,
                         "started_at": time.time()}

    # one process: rank 0 of 1. A trial of several workers has a `GroupTrial`
    # (trainable/distributed.py), so that one loop serves both
    rank = 0
    world_size = 1

    def prepare(self, model: Any) -> Any:
        """The model ready to train: on the trial's device (and wrapped in DDP on a
        trial of several workers)."""
        return model.to(self.device)

    def shard(self, data: Any) -> Any:
        """This worker's part of `data` (a tensor, a Dataset or a DataLoader): all of it
        in a trial of one worker."""
        return data

    @property
    def reported(self) -> bool:
        """Has the loop reported an epoch in this attempt?"""
        return self._last is not None

    def restore(self) -> Any:
        """The object last passed as `checkpoint=` (after a resume, a retried failure or
        a PBT exploit), or None on a fresh start."""
        import torch

        checkpoint = self._checkpoint()
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

    def watch(self, model: Any, optimizer: Any) -> None:
        """Record the training's own signals for `model`, trained by `optimizer`, with no
        other change to the loop: grad_norm, grad_norm_max, update_ratio and
        grad_norm_ratio (docs/own-loop.md), each `report` carrying what was measured
        since the one before. Hooks on the optimizer's step measure every 16th step (the
        first after each report always): the gradients as the step receives them (after
        the loop's own clipping, if it clips; unscaled, under a GradScaler), the weights
        before and after it. Without `watch` the columns stay null. Watching again
        replaces what was watched."""
        from orchestrator.trainable.signals import Signals

        if self._watched is not None:
            for handle in self._watched[1]:
                handle.remove()
        signals = Signals(model)
        measured = [False]  # is the step in progress measured?

        def before(_optimizer, _args, _kwargs) -> None:
            measured[0] = signals.due()
            if measured[0]:
                signals.gradients()
                signals.before_step()

        def after(_optimizer, _args, _kwargs) -> None:
            if measured[0]:
                signals.after_step()

        self._watched = (signals, (optimizer.register_step_pre_hook(before),
                                   optimizer.register_step_post_hook(after)))

    def report(self, epoch: int, checkpoint: Any = None, batch_size: int | None = None,
               **metrics: Any) -> None:
        """One row of history: the epoch (1, 2, ...) and numbers; `checkpoint` is kept as
        the spec's checkpoint policy says (and always with the last report); `batch_size`,
        the batch the loop trained at (it owns it: after an out-of-memory error it may
        have taken a smaller one), is recorded as the tables' batch_size_used."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 1:
            raise ReportError(f"trial.report: epoch is {epoch!r}, but must be an integer >= 1")
        wrong = out_of_order(int(epoch), self._last[0]["epoch"] if self._last else None,
                             self._restored_from)
        if wrong:
            raise ReportError(wrong)
        row: dict[str, Any] = {"epoch": int(epoch)}
        if batch_size is not None:
            whole = isinstance(batch_size, numbers.Integral) or (
                isinstance(batch_size, float) and batch_size.is_integer())
            if isinstance(batch_size, bool) or not whole or batch_size < 1:
                raise ReportError(f"trial.report: batch_size is {batch_size!r}, but must be "
                                  "an integer >= 1 (the batch the loop trained at)")
            row["batch_size"] = int(batch_size)
        for name, value in metrics.items():
            if name in RESERVED:
                raise ReportError(f"trial.report: {name!r} is a name this tool reports "
                                  "itself; call your metric something else")
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ReportError(f"trial.report: {name} is {value!r}, but metrics must be "
                                  "numbers")
            row[name] = float(value)
        if not self._checked:
            if self._metric not in row:
                raise ReportError(
                    f"trial.report: the spec's metric {self._metric!r} is not among the "
                    f"reported keys ({', '.join(sorted(metrics)) or 'none'})")
            self._checked = True
        if self._watched is not None:
            row.update(self._watched[0].read())
        last = epoch >= self._epochs
        row.update(self._context, stop_reason=_end(row, metrics) if last else None,
                   restored_from_epoch=self._restored_from, ended_at=time.time(),
                   trial_time_s=self._time_before + time.monotonic() - self._started,
                   **{LOOP_METRICS: ",".join(sorted(metrics))})
        self._last = (row, checkpoint)
        if checkpoint is not None and (last or self._due(epoch)):
            self._report_with(row, checkpoint)
        else:
            self._send(row)

    def _report_with(self, row: dict, checkpoint: Any) -> None:
        import torch

        with tempfile.TemporaryDirectory() as folder:
            torch.save(checkpoint, Path(folder) / CHECKPOINT_FILE)
            (Path(folder) / META_FILE).write_text(json.dumps(
                {"epoch": row["epoch"], "trial_time_s": row["trial_time_s"]}))
            self._send(row, folder)

    def finish(self) -> None:
        """The loop returned: its last row again, marked completed (the tables' stop
        reason), with its checkpoint kept. Nothing after a restore of the last epoch's
        checkpoint: PBT exploits at the end too (a perturbation due at the last epoch
        hands a trial another's final checkpoint), and so does a resume whose driver was
        killed as the trial ended, before Tune recorded its end: the loop has no epoch
        left, and its rows were reported before."""
        if self._last is None:
            if self._restored_from >= self._epochs:
                return
            raise ValueError("the loop returned without a trial.report: nothing to record")
        row, checkpoint = self._last
        if row["stop_reason"]:
            return  # its last epoch was reported as the end already
        final = {**row, "stop_reason": _end(row, row[LOOP_METRICS].split(","))}
        if checkpoint is not None:
            self._report_with(final, checkpoint)
        else:
            self._send(final)

    # -- where reports go and checkpoints come from: Tune here; a worker group's
    # ranks send theirs through Ray Train (trainable/distributed.py) --------------------
    def _checkpoint(self):
        return tune.get_checkpoint()

    def _send(self, row: dict, folder: str | None = None) -> None:
        if folder is None:
            tune.report(row)
        else:
            report_with_checkpoint(row, folder)


def _end(row: dict, names) -> str:
    """completed, or diverged when a metric of the last row is not finite."""
    return StopReason.COMPLETED if all(math.isfinite(row[n]) for n in names if n in row) \
        else StopReason.DIVERGED


def _node_id() -> str | None:
    import ray

    return ray.get_runtime_context().get_node_id()


def train_loop(config: dict) -> None:
    """The Ray Tune function trainable of a user's loop."""
    from orchestrator.spec.user_code import import_ref
    from orchestrator.trainable.not_retried import fail_if_failed_before, first_report_pending
    from orchestrator.trainable.oom import in_loop, out_of_memory
    from orchestrator.trainable.user_data import code_folders

    fail_if_failed_before()
    trial: Trial | None = None
    with first_report_pending(lambda: trial is not None and trial.reported):
        cfg = LoopTrialConfig.model_validate(config)
        # `device: cpu` among the loop's keys: GPUs Ray gave it are not to be used
        place = placement("cpu" if cfg.train.settings.get("device") == "cpu" else "auto")
        fn = import_ref(cfg.train.function, "train.function", code_folders(cfg.code))
        trial = Trial(cfg, tune.get_context().get_trial_id(), place.device, place.threads,
                      place.columns()["gpu_ids"])
        try:
            fn(dict(cfg.train.settings), trial)
        except RuntimeError as exc:
            if not out_of_memory(exc):
                raise
            raise in_loop(cfg.train.function, cfg.train.settings, exc) from exc
        trial.finish()
