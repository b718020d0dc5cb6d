"""A user's project whose model runs out of GPU memory at large batches, on the CPU: its
forward raises CUDA's own `torch.cuda.OutOfMemoryError` (or the older "out of memory"
RuntimeError) once a batch holds `limit` examples or more, a stand-in for a GPU's limit.
Tests of the out-of-memory halving build theirs here."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

HUNGRY = '''
"""A model that runs out of "GPU memory" at `limit` examples per batch or more."""
import time

import torch
from torch import nn


class Hungry(nn.Module):
    def __init__(self, features, outputs, limit, after, log, error, delay):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(features, 16), nn.ReLU(),
                                 nn.Dropout(0.1), nn.Linear(16, outputs))
        self.limit, self.after, self.log, self.error = limit, after, log, error
        self.delay = delay
        self.steps = 0  # training forwards so far: `after` of them run at any batch

    def forward(self, x):
        if self.training:
            self.steps += 1
            time.sleep(self.delay)
        if len(x) >= self.limit and (self.steps > self.after or not self.training):
            if self.log:  # one line per error raised, for tests that count them
                with open(self.log, "a") as handle:
                    handle.write(f"{len(x)}\\n")
            if self.error == "runtime":
                raise RuntimeError("CUDA error: out of memory")
            raise torch.cuda.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate {len(x)} examples' activations")
        return self.net(x)


def build(input_shape, num_outputs, limit=128, after=0, log=None, error="cuda", delay=0.0):
    return Hungry(input_shape[0], num_outputs, limit, after, log, error, delay)
'''

# 400 examples: 320 to train on (so a batch of 256 is not cut to the data), 80 to
# validate on (under the limit at any evaluation batch)
DATASET = {"name": "synthetic", "n_samples": 400, "n_features": 8}


def hungry_train(folder: Path, **changes) -> dict:
    """`train:` of a trial on the hungry model (its module written into `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hungry.py").write_text(textwrap.dedent(HUNGRY))
    train = {
        "dataset": dict(DATASET),
        "model": {"factory": "hungry:build", "limit": 128},
        "epochs": 3,
        "batch_size": 256,
        "optimizer": {"name": "sgd", "lr": 0.1},
        "batch_scaling": {"rule": "sqrt", "reference_batch_size": 32},
        "early_stopping": {"patience": None},
    }
    for key, value in changes.items():
        train[key] = {**train[key], **value} if isinstance(value, dict) and \
            isinstance(train.get(key), dict) else value
    return train


def write_hungry_project(folder: Path, name: str = "hungry", **spec_changes) -> Path:
    """The project in `folder` (hungry.py beside spec.yaml); returns the spec's path."""
    spec = {
        "name": name,
        "num_samples": 4,
        "seed": 0,
        "train": hungry_train(folder),
        "search_space": {"batch_size": {"choice": [64, 256]}},
        "scheduler": {"name": "fifo"},
        "storage": str(folder / "sweeps"),
    }
    spec.update(spec_changes)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


LOOP = '''
"""A user's own loop that runs out of "GPU memory" at `limit` examples per batch."""
import torch


def train(config, trial):
    batch = config["batch_size"]
    for epoch in range(1, config["epochs"] + 1):
        if batch >= config["limit"]:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        trial.report(epoch=epoch, train_loss=1.0 / epoch, val_loss=1.5 / epoch,
                     batch_size=batch)
'''


def write_hungry_loop(folder: Path) -> Path:
    """A project whose loop runs out of memory at batch 256 and not at 64."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hungry_loop.py").write_text(textwrap.dedent(LOOP))
    spec = {
        "name": "hungry-loop", "metric": "val_loss", "seed": 0,
        "train": {"function": "hungry_loop:train", "epochs": 2, "batch_size": 64,
                  "limit": 128},
        "search_space": {"batch_size": {"grid": [64, 256]}},
        "scheduler": {"name": "fifo"},
        "storage": str(folder / "sweeps"),
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path
