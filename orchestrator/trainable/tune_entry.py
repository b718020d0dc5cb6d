"""The Ray Tune function trainable: every trial of every sweep runs this.

It validates its config, picks its device and thread count from the resources
Tune gave it (GPUs Ray assigned on a node where torch sees no CUDA: one line, at once),
restores from `tune.get_checkpoint()` when there is one, and reports one row per epoch
with a checkpoint of the trainer's full state.
"""

from __future__ import annotations

import json
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ray
from ray import tune

from orchestrator.errors import storage_problem, strerror
from orchestrator.spec.settings import TrialConfig
from orchestrator.states import STORAGE_ERROR

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


class NoCuda(Exception):
    """Ray gave the trial GPUs on a node where torch sees no CUDA."""


@dataclass(frozen=True)
class Placement:
    """Where a trial trains: its device, torch's threads (its CPU share) and the ids of
    the GPUs Ray assigned it (none without GPUs)."""

    device: str
    threads: int
    gpu_ids: tuple[str, ...] = ()

    def columns(self) -> dict:
        """What every report says of it: gpu_ids as JSON text (`["0"]`, null without a
        GPU), as the tables hold lists."""
        return {"device": self.device, "threads": self.threads,
                "gpu_ids": json.dumps(list(self.gpu_ids)) if self.gpu_ids else None}


def placement(wanted: str = "auto") -> Placement:
    """The trial's device by `train.device`: `auto` trains on CUDA when Ray assigned the
    trial GPUs, `cuda` always, `cpu` never. GPUs with no CUDA for torch (a CPU build of
    torch, no driver) fail the trial at once, rather than run it slowly on the CPU while
    it holds a GPU slot, unless `cpu` says that is meant."""
    import torch

    resources = tune.get_context().get_trial_resources().required_resources
    threads = max(1, int(resources.get("CPU", 1)))
    gpu_ids = tuple(str(i) for i in ray.get_gpu_ids())
    if wanted == "cpu" or not (gpu_ids or wanted == "cuda"):
        return Placement("cpu", threads, gpu_ids)
    if not torch.cuda.is_available():
        given = f"GPU {', '.join(gpu_ids)}" if gpu_ids else "no GPU"
        raise NoCuda(
            f"trial {tune.get_context().get_trial_id()}: Ray gave it {given} on node "
            f"{ray.util.get_node_ip_address()}, but torch {torch.__version__} there sees no "
            "CUDA (a CPU build of torch, or no driver): install a CUDA build of torch on "
            "the GPU nodes, or set train.device: cpu to train on the CPU")
    return Placement("cuda", threads, gpu_ids)


def device_and_threads(wanted: str = "auto") -> tuple[str, int]:
    """`placement`'s device and threads alone."""
    place = placement(wanted)
    return place.device, place.threads


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

    started_at = time.time()  # this run's start: with its reports' times, when it ran
    cfg = TrialConfig.model_validate(config)
    place = placement(cfg.train.device)
    # one thread per CPU granted, so concurrent trials do not oversubscribe the cores
    torch.set_num_threads(place.threads)
    trial_id = tune.get_context().get_trial_id()
    node_id = ray.get_runtime_context().get_node_id()  # tells nodes apart on one host
    trainer = Trainer(cfg, trial_index(trial_id), place.device, place.threads)
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
        halvings = trainer.oom_halvings
        metrics = trainer.train_epoch()
        metrics.update(place.columns(), node_id=node_id, exploited_from=exploited_from,
                       started_at=started_at, ended_at=time.time())
        exploited_from = None
        # an epoch that halved the batch for memory is checkpointed: a restore keeps the
        # batch that fits rather than running out of memory again to find it
        if trainer.finished or trainer.oom_halvings > halvings or due(trainer.epoch):
            with tempfile.TemporaryDirectory() as folder:
                trainer.save(folder, owner=trial_id)
                report_with_checkpoint(metrics, folder)
        else:
            tune.report(metrics)
        reported.append(trainer.epoch)
