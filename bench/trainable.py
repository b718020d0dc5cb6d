"""The shared trainable's loop against a minimal hand-written PyTorch loop.

Same model, data and batch size, one CPU thread, training plus one validation
pass per epoch in both; the runs alternate so that machine noise hits both alike.
Prints each loop's rate (training examples per second), and their ratio.

    python -m bench.trainable [--epochs 5] [--repeats 3] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from orchestrator.trainable.config import TrialConfig
from orchestrator.trainable.trainer import Trainer

DATASET = {"name": "synthetic", "n_samples": 20000, "n_features": 32, "n_classes": 4}


def config(epochs: int, batch_size: int) -> TrialConfig:
    return TrialConfig.model_validate({"train": {
        "dataset": DATASET, "model": {"name": "mlp", "hidden": 128, "depth": 2},
        "epochs": epochs, "batch_size": batch_size,
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "schedule": {"name": "cosine", "warmup_epochs": 1},
        "early_stopping": {"patience": None},
    }})


def ours(epochs: int, batch_size: int) -> float:
    trainer = Trainer(config(epochs, batch_size))
    started = time.perf_counter()
    while not trainer.finished:
        trainer.train_epoch()
    return len(trainer.data.x_train) * epochs / (time.perf_counter() - started)


def minimal(epochs: int, batch_size: int) -> float:
    """The loop from the PyTorch tutorials, on the same tensors and model."""
    reference = Trainer(config(epochs, batch_size))  # same data split and model shape
    data, model = reference.data, reference.model
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(data.x_train)).split(batch_size):
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            F.cross_entropy(model(data.x_val), data.y_val).item()
    return len(data.x_train) * epochs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rates: dict[str, list[float]] = {"minimal": [], "trainable": []}
    for _ in range(args.repeats):
        rates["minimal"].append(minimal(args.epochs, args.batch_size))
        rates["trainable"].append(ours(args.epochs, args.batch_size))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"MLP 32-128-128-4, {DATASET['n_samples']} synthetic examples, batch "
          f"{args.batch_size}, {args.epochs} epochs x {args.repeats} runs, 1 thread (median)")
    for name, rate in med.items():
        print(f"  {name:10} {rate:12,.0f} examples/s")
    print(f"  ratio trainable/minimal: {med['trainable'] / med['minimal']:.3f}")


if __name__ == "__main__":
    main()
