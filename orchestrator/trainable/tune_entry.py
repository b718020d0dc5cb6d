"""The Ray Tune function trainable: every trial of every sweep runs this.

It validates its config, picks its device and thread count from the resources
Tune gave it, restores from `tune.get_checkpoint()` when there is one, and reports
one row per epoch with a checkpoint of the trainer's full state.
"""

from __future__ import annotations

import tempfile
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import ray
from ray import tune

from orchestrator.errors import storage_problem, strerror
from orchestrator.spec.settings import STORAGE_ERROR, TrialConfig

if TYPE_CHECKING:
    from orchestrator.trainable.trainer import Trainer

# torch is imported by the trial's worker, in the functions below: the driver only
# registers `train_trial` with Tune and need not pay a second for torch at start-up.


def trial_index(trial_id: str) -> int:
    """Tune's trial ids end in a zero-padded index (`ab12c_00003`): it seeds the trial."""
    try:
        return int(trial_id.rsplit("_", 1)[-1])
    except ValueError:
        return zlib.crc32(trial_id.encode())


def device_and_threads() -> tuple[str, int]:
    import torch

    context = tune.get_context()
    resources = context.get_trial_resources().required_resources
    threads = max(1, int(resources.get("CPU", 1)))
    use_gpu = resources.get("GPU", 0) > 0 and ray.get_gpu_ids() and torch.cuda.is_available()
    return ("cuda" if use_gpu else "cpu"), threads


def newest_complete_checkpoint(fs, trial_path: str) -> tune.Checkpoint | None:
    """The newest checkpoint in the trial's folder on the sweep's storage (`fs`, a
    pyarrow filesystem: a shared folder or an object store) that was written whole (its
    meta file is written last), or None."""
    import pyarrow.fs as pafs

    from orchestrator.trainable.trainer import META_FILE

    found = fs.get_file_info(pafs.FileSelector(trial_path, allow_not_found=True))
    names = sorted((i.base_name for i in found if i.type == pafs.FileType.Directory
                    and i.base_name.startswith("checkpoint_")), reverse=True)
    for name in names:  # checkpoint_000012: zero-padded, so the newest sorts first
        if fs.get_file_info(f"{trial_path}/{name}/{META_FILE}").type == pafs.FileType.File:
            return tune.Checkpoint(path=f"{trial_path}/{name}", filesystem=fs)
    return None


def _restore(trainer: Trainer, checkpoint: tune.Checkpoint) -> None:
    """Load the checkpoint Tune hands over. A restored experiment state can name one
    that Tune has since deleted (it keeps the newest few, and its snapshot of which
    ones exist lags): then the newest checkpoint left in the trial's folder on the
    sweep's storage is used (not the node's own staging folder: on a cluster the trial
    may be restored on another node)."""
    try:
        with checkpoint.as_directory() as folder:
            trainer.load(folder)
    except FileNotFoundError:
        storage = tune.get_context().get_storage()
        newest = newest_complete_checkpoint(storage.storage_filesystem,
                                            storage.trial_fs_path)
        if newest is None:
            raise
        with newest.as_directory() as folder:
            trainer.load(folder)


def checkpoint_policy(every: int | None, interval_s: float) -> Callable[[int], bool]:
    """Is a checkpoint due after this epoch? Every `every` epochs; with `every` None,
    once `interval_s` has passed since the last one (or since the trial started here).
    A checkpoint costs a save and a copy into the trial folder at each epoch, a few
    percent of a sweep of short epochs; ASHA, median stopping and FIFO never resume a
    trial they stopped, so only a crash needs one, and it costs at most `interval_s`."""
    if every is not None:
        return lambda epoch: epoch % every == 0
    last = time.monotonic()

    def due(epoch: int) -> bool:
        nonlocal last
        if time.monotonic() - last < interval_s:
            return False
        last = time.monotonic()
        return True

    return due


def report_with_checkpoint(metrics: dict, folder: str) -> None:
    """`tune.report` of `metrics` with the checkpoint in `folder`. A storage that refuses
    the checkpoint (full, read-only) does not fail the trial: Tune would retry it and then
    record it as errored, for a fault of the disk. The epoch is reported without its
    checkpoint, saying why (`STORAGE_ERROR`); the driver then stops the sweep as on
    Ctrl-C, and `sweep resume` continues the trial from its last checkpoint written."""
    try:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
    except OSError as exc:
        problem = storage_problem(exc)
        if problem is None:
            raise
        tune.report({**metrics, STORAGE_ERROR: strerror(problem)})


def train_trial(config: dict) -> None:
    """Train one trial, one `tune.report` per epoch, with a checkpoint when
    `checkpoint_policy` says one is due and at the last epoch. An error of the data or
    the code before the first report is not retried (`not_retried`)."""
    from orchestrator.trainable.not_retried import fail_if_failed_before, first_report_pending

    fail_if_failed_before()
    reported: list[int] = []  # the epochs reported in this attempt
    with first_report_pending(lambda: bool(reported)):
        _train(config, reported)


def _train(config: dict, reported: list[int]) -> None:
    import torch

    from orchestrator.trainable.trainer import Trainer

    cfg = TrialConfig.model_validate(config)
    device, threads = device_and_threads()
    # one thread per CPU granted, so concurrent trials do not oversubscribe the cores
    torch.set_num_threads(threads)
    trial_id = tune.get_context().get_trial_id()
    node_id = ray.get_runtime_context().get_node_id()  # tells nodes apart on one host
    trainer = Trainer(cfg, trial_index(trial_id), device, threads)
    checkpoint = tune.get_checkpoint()
    # PBT's exploit hands this trial another trial's checkpoint: the first epoch after
    # it says whose weights (and which epoch of them) it continued from
    exploited_from = None
    if checkpoint:
        _restore(trainer, checkpoint)
        owner = trainer.checkpoint_owner
        if owner and owner != trial_id:
            exploited_from = f"{owner}@{trainer.epoch}"
    due = checkpoint_policy(cfg.train.checkpoint_every, cfg.train.checkpoint_interval_s)
    while not trainer.finished:
        metrics = trainer.train_epoch()
        metrics.update(device=device, threads=threads, node_id=node_id,
                       exploited_from=exploited_from)
        exploited_from = None
        if trainer.finished or due(trainer.epoch):
            with tempfile.TemporaryDirectory() as folder:
                trainer.save(folder, owner=trial_id)
                report_with_checkpoint(metrics, folder)
        else:
            tune.report(metrics)
        reported.append(trainer.epoch)
