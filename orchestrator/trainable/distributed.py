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

import atexit
import functools
import tempfile
import threading
import time
import uuid
from typing import Any

import ray
import ray.train
from ray import tune

from orchestrator.spec.settings import (
    GROUP_KEY,
    GROUP_PLACEMENT_KEY,
    LoopTrialConfig,
    TrialConfig,
)
from orchestrator.trainable.loop import Trial
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
    placed = Queue(maxsize=1, actor_options={"num_cpus": 0})  # the group's placement group
    train_storage = f"{storage.trial_fs_path}/group"
    trainer = TorchTrainer(
        _worker,
        train_loop_config={"config": {k: v for k, v in config.items() if k != GROUP_KEY},
                           "group": group, "trial_id": trial_id,
                           "checkpoint": tune.get_checkpoint(), "started_at": time.time(),
                           "placed": placed},
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
    group_pg: list = []  # the group's placement group, once rank 0 has named it
    end = functools.partial(_end_group, placed, group_pg)
    atexit.register(end)  # the actor exits without the code below getting to run
    try:
        while (item := reports.get()) != _END:
            if not group_pg:  # rank 0 named it before its first report
                _take_group(placed, group_pg)
            # each report names the group to the driver, which removes it once Tune
            # ends or pauses the trial: Tune ends this actor, the group's controller
            # with it, while it waits for the group's end, and nothing here runs then
            metrics = {**item["metrics"], GROUP_PLACEMENT_KEY: group_pg[0].id.hex()} \
                if group_pg else item["metrics"]
            checkpoint = item["checkpoint"]
            if checkpoint is None:
                tune.report(metrics)
            else:  # Tune copies it into the trial's folder, as a one-worker trial's
                tune.report(metrics, checkpoint=tune.Checkpoint(
                    path=checkpoint.path, filesystem=checkpoint.filesystem))
            taken.put(True)
    except BaseException:
        # Tune stopped the trial (a scheduler: tune.report raises SystemExit), or it
        # failed: end the group with it
        end()
        raise
    atexit.unregister(end)
    runner.join()
    # the group's placement group goes now, though Train's controller removes it as it
    # shuts down: `fit` can return before it has, and Tune then ends this actor and the
    # controller with it, which left the group's CPUs reserved for good (seen: the next
    # trials waited for ever)
    end()
    # Train's own copy of the last checkpoint (a trial a scheduler stopped never gets
    # here: its group folder keeps one checkpoint)
    storage.storage_filesystem.delete_dir_contents(train_storage, missing_dir_ok=True)
    if failed:
        raise failed[0]


class GroupTrial(Trial):
    """A user's loop on one rank of a worker group: `rank` and `world_size`, `prepare`
    and `shard` by Ray Train's own helpers, every rank's report sent through Ray Train
    (Tune records rank 0's, as Ray's TuneReportCallback does), rank 0's checkpoint kept,
    Tune's checkpoint restored on every rank."""

    def __init__(self, config: LoopTrialConfig, trial_id: str, device: str, cpus: int,
                 gpu_ids: str | None, checkpoint, rank: int, world_size: int):
        super().__init__(config, trial_id, device, cpus, gpu_ids)
        self.rank, self.world_size = rank, world_size
        self._context["workers"] = world_size
        self._given = checkpoint

    def prepare(self, model: Any) -> Any:
        """`model` on this worker's device, wrapped in DDP (Ray Train's `prepare_model`):
        its gradients are averaged over the ranks at every backward."""
        from ray.train.torch import prepare_model

        return prepare_model(model)

    def shard(self, data: Any) -> Any:
        """This rank's part of `data`: a DataLoader through Ray Train's
        `prepare_data_loader` (a DistributedSampler, batches on the device); a tensor or
        a Dataset: every world_size-th row from this rank's on."""
        from torch.utils.data import DataLoader, Subset

        if isinstance(data, DataLoader):
            from ray.train.torch import prepare_data_loader

            return prepare_data_loader(data)
        if hasattr(data, "shape"):
            return data[self.rank::self.world_size]
        return Subset(data, range(self.rank, len(data), self.world_size))

    def _checkpoint(self):
        return self._given

    def _report_with(self, row: dict, checkpoint: Any) -> None:
        if self.rank == 0:
            super()._report_with(row, checkpoint)
        else:
            self._send(row)

    def _send(self, row: dict, folder: str | None = None) -> None:
        if folder is None:
            ray.train.report(row)
        else:
            ray.train.report(row, checkpoint=ray.train.Checkpoint.from_directory(folder))


def _place(group: dict, wanted: str) -> tuple[str, int, str | None]:
    """This worker's device, torch threads and GPU ids (JSON text, None without)."""
    import json

    import torch

    device = "cpu"
    if group["gpu"] and wanted != "cpu":
        from ray.train.torch import get_device

        device = str(get_device())
    threads = max(1, int(group["cpu"]))
    torch.set_num_threads(threads)
    gpu_ids = [str(i) for i in ray.get_gpu_ids()]
    return device, threads, json.dumps(gpu_ids) if gpu_ids else None


def _loop_worker(loop_config: dict[str, Any], rank: int, world: int) -> None:
    from orchestrator.spec.user_code import import_ref
    from orchestrator.trainable.user_data import code_folders

    cfg = LoopTrialConfig.model_validate(loop_config["config"])
    device, threads, gpu_ids = _place(loop_config["group"],
                                      "cpu" if cfg.train.settings.get("device") == "cpu"
                                      else "auto")
    fn = import_ref(cfg.train.function, "train.function", code_folders(cfg.code))
    trial = GroupTrial(cfg, loop_config["trial_id"], device, threads, gpu_ids,
                       loop_config["checkpoint"], rank, world)
    fn(dict(cfg.train.settings), trial)
    trial.finish()


def _take_group(placed, group_pg: list) -> None:
    """The group's placement group from rank 0 (through `placed`) into `group_pg`."""
    from ray.util.queue import Empty

    try:
        group_pg.append(placed.get(timeout=5))
    except (Empty, ray.exceptions.RayError):
        pass  # the group never started: nothing reserved


def _end_group(placed, group_pg: list) -> None:
    """Remove the worker group's placement group, and with it its workers. Tune ends a
    stopped trial's actor, and with it the group's controller, which would have removed
    it; Ray Train's cleaner for that case asks Ray's state API, which a Ray without its
    dashboard (ours, embedded) does not serve: the placement group would hold the
    workers' CPUs for good, and the next trials would wait for them for ever. (The
    driver removes it too, should this actor be ended before it can: engine/groups.py.)"""
    from ray.util import remove_placement_group

    if not group_pg:
        _take_group(placed, group_pg)
    if group_pg:
        try:
            remove_placement_group(group_pg[0])
        except Exception:  # noqa: BLE001 - removed already (the group ended first)
            pass


def _worker(loop_config: dict[str, Any]) -> None:
    """One rank of the group: the shared trainer on its shard (or the user's loop), one
    report per epoch from every rank (Ray Train gathers them), the checkpoint from
    rank 0."""
    from orchestrator.trainable.ddp import GroupTrainer

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    if rank == 0:  # for the trial's function to end the group with the trial
        loop_config["placed"].put(ray.util.get_current_placement_group())
    if "function" in loop_config["config"]["train"]:
        _loop_worker(loop_config, rank, world)
        return
    group, trial_id = loop_config["group"], loop_config["trial_id"]
    cfg = TrialConfig.model_validate(loop_config["config"])
    device, threads, gpu_ids = _place(group, cfg.train.device)
    trainer = GroupTrainer(cfg, trial_index(trial_id), device, threads, rank, world)
    checkpoint, exploited_from = loop_config["checkpoint"], None
    if checkpoint is not None:  # every rank loads it
        with checkpoint.as_directory() as folder:
            trainer.load(folder)
        owner = trainer.checkpoint_owner
        if owner and owner != trial_id:
            exploited_from = f"{owner}@{trainer.epoch}"
    columns = {"device": device, "threads": threads, "gpu_ids": gpu_ids,
               "node_id": ray.get_runtime_context().get_node_id(), "workers": world}
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
