"""A trial of several workers (resources.workers >= 2): a Ray Train worker group.

As Ray documents Tune with Train V2 (Ray >= 2.43), the trial's Tune function
(`train_group`) launches a `TorchTrainer` whose workers train data-parallel (DDP: gloo
on CPU, nccl on GPU), gang-scheduled in one placement group, packed or spread. Each
rank runs the shared trainer (`trainable/ddp.py`); rank 0 writes the checkpoints.

Ray's `TuneReportCallback` passes a report's metrics to Tune and its checkpoint only as
a path among them: Tune would hold no checkpoint, so neither a resume nor PBT's exploit
could hand one back. `ToTune` is the same callback that keeps the checkpoint: it hands
each report (rank 0's metrics, the checkpoint) through a queue to this function, which
reports it to Tune with the checkpoint, as a one-worker trial does; restored, the
function passes Tune's checkpoint to the new group and every rank loads it. Tune stops
the trial (ASHA, the median rule): its actor ends and with it the group it started.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from typing import Any

import ray
import ray.train
from ray import tune

from orchestrator.spec.settings import GROUP_KEY, TrialConfig
from orchestrator.trainable.tune_entry import checkpoint_policy, trial_index

_END = "end"


class ToTune(ray.train.UserCallback):
    """After every report of the group: rank 0's metrics and the checkpoint, to the
    trial's function through `reports`; the group waits until Tune has the report (and
    its copy of the checkpoint: `taken`), so Train may then delete its own (it keeps one)."""

    def __init__(self, reports, taken):
        self.reports, self.taken = reports, taken

    def after_report(self, run_context, metrics: list[dict], checkpoint) -> None:
        self.reports.put({"metrics": metrics[0], "checkpoint": checkpoint})
        self.taken.get()


def _scaling(group: dict):
    from ray.train import ScalingConfig

    return ScalingConfig(
        num_workers=group["workers"], use_gpu=bool(group["gpu"]),
        resources_per_worker={"CPU": group["cpu"], **({"GPU": group["gpu"]}
                                                      if group["gpu"] else {})},
        placement_strategy="SPREAD" if group["placement"] == "spread" else "PACK")


def train_group(config: dict) -> None:
    """The Tune function of a trial of several workers: launch its worker group and pass
    its reports to Tune, each with its checkpoint."""
    from ray.train.torch import TorchTrainer
    from ray.util.queue import Queue

    group = config[GROUP_KEY]
    context = tune.get_context()
    trial_id = context.get_trial_id()
    storage = context.get_storage()
    reports = Queue(maxsize=1, actor_options={"num_cpus": 0})
    taken = Queue(maxsize=1, actor_options={"num_cpus": 0})
    train_storage = f"{storage.trial_fs_path}/group"
    trainer = TorchTrainer(
        _worker,
        train_loop_config={"config": {k: v for k, v in config.items() if k != GROUP_KEY},
                           "group": group, "trial_id": trial_id,
                           "checkpoint": tune.get_checkpoint(), "started_at": time.time()},
        scaling_config=_scaling(group),
        run_config=ray.train.RunConfig(
            # a fresh run per start: the group continues from Tune's checkpoint, not
            # from a Train run's own state
            name=f"group-{uuid.uuid4().hex[:8]}",
            storage_path=train_storage,
            storage_filesystem=storage.storage_filesystem,
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
            callbacks=[ToTune(reports, taken)]),
    )
    failed: list[BaseException] = []

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as exc:  # noqa: BLE001 - raised again in the trial's thread
            failed.append(exc)
        finally:
            reports.put(_END)

    runner = threading.Thread(target=fit, name="group", daemon=True)
    runner.start()
    while (item := reports.get()) != _END:
        checkpoint = item["checkpoint"]
        if checkpoint is None:
            tune.report(item["metrics"])
        else:  # Tune copies it into the trial's folder, as a one-worker trial's
            tune.report(item["metrics"], checkpoint=tune.Checkpoint(
                path=checkpoint.path, filesystem=checkpoint.filesystem))
        taken.put(True)
    runner.join()
    # Train's own copy of the last checkpoint (a trial a scheduler stopped never gets
    # here: its group folder keeps one checkpoint)
    storage.storage_filesystem.delete_dir_contents(train_storage, missing_dir_ok=True)
    if failed:
        raise failed[0]


def _worker(loop_config: dict[str, Any]) -> None:
    """One rank of the group: the shared trainer on its shard, one report per epoch
    from every rank (Ray Train gathers them), the checkpoint from rank 0."""
    import torch

    from orchestrator.trainable.ddp import GroupTrainer

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    group, trial_id = loop_config["group"], loop_config["trial_id"]
    cfg = TrialConfig.model_validate(loop_config["config"])
    if group["gpu"] and cfg.train.device != "cpu":
        from ray.train.torch import get_device

        device = str(get_device())
    else:
        device = "cpu"
    threads = max(1, int(group["cpu"]))
    torch.set_num_threads(threads)
    trainer = GroupTrainer(cfg, trial_index(trial_id), device, threads, rank, world)
    checkpoint, exploited_from = loop_config["checkpoint"], None
    if checkpoint is not None:  # every rank loads it
        with checkpoint.as_directory() as folder:
            trainer.load(folder)
        owner = trainer.checkpoint_owner
        if owner and owner != trial_id:
            exploited_from = f"{owner}@{trainer.epoch}"
    columns = {"device": device, "threads": threads,
               "gpu_ids": None, "node_id": ray.get_runtime_context().get_node_id(),
               "workers": world}
    gpu_ids = ray.get_gpu_ids()
    if gpu_ids:
        import json

        columns["gpu_ids"] = json.dumps([str(i) for i in gpu_ids])
    due = checkpoint_policy(cfg.train.checkpoint_every, cfg.train.checkpoint_interval_s)
    while not trainer.finished:
        metrics = trainer.train_epoch()
        metrics.update(columns, exploited_from=exploited_from,
                       started_at=loop_config["started_at"], ended_at=time.time())
        exploited_from = None
        if rank == 0 and (trainer.finished or due(trainer.epoch)):
            with tempfile.TemporaryDirectory() as folder:
                trainer.save(folder, owner=trial_id)
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(
                    folder))
        else:
            ray.train.report(metrics)
