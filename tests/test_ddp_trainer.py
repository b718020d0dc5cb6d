"""The shared trainer on two ranks of a gloo process group (torch's own, no Ray: Ray
Train's group is tests/test_distributed.py) against one process: the same global batches
and seed give the same curves. The last batch of an epoch splits unevenly (9 + 8 rows):
each rank's loss weighted by its share is what keeps the gradient the global batch's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from orchestrator.spec.settings import TrialConfig

CONFIG = {
    "train": {"dataset": {"name": "synthetic", "n_samples": 301, "n_features": 8},
              "model": {"name": "mlp", "hidden": 16, "depth": 1}, "epochs": 2,
              "batch_size": 32, "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
              "schedule": {"name": "cosine", "warmup_epochs": 1}},
    "seed": 3,
}
# two processes that import torch: slow for the fast lane, though no Ray starts
pytestmark = pytest.mark.slow
COLUMNS = ("train_loss", "val_loss", "val_acc", "lr", "grad_norm")


def _rank(rank: int, world: int, init: str, out: str) -> None:
    from torch.nn.parallel import DistributedDataParallel

    from orchestrator.trainable.ddp import GroupTrainer

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        trainer = GroupTrainer(TrialConfig.model_validate(CONFIG), 0, "cpu", 1, rank, world,
                               wrap=DistributedDataParallel)
        rows = []
        while not trainer.finished:
            rows.append(trainer.train_epoch())
        if rank == 0:
            with open(out, "w") as handle:
                json.dump([{c: r[c] for c in COLUMNS} for r in rows], handle)
    finally:
        dist.destroy_process_group()


def test_two_ranks_train_like_one_process(tmp_path):
    from orchestrator.trainable.trainer import Trainer

    torch.set_num_threads(1)
    one = Trainer(TrialConfig.model_validate(CONFIG), 0, "cpu", 1)
    expected = []
    while not one.finished:
        row = one.train_epoch()
        expected.append({c: row[c] for c in COLUMNS})
    out = tmp_path / "two.json"
    mp.spawn(_rank, args=(2, f"file://{tmp_path / 'rendezvous'}", str(out)), nprocs=2)
    got = json.loads(out.read_text())
    assert len(got) == len(expected) == 2
    for column in COLUMNS:
        np.testing.assert_allclose([r[column] for r in got], [r[column] for r in expected],
                                   rtol=1e-5, err_msg=column)
