"""The shared trainable's loop against a minimal hand-written PyTorch loop.

Same model, data and batch size, one CPU thread, training plus one validation
pass per epoch in both; the runs alternate so that machine noise hits both alike.
Two paths: the built-in tensor path (batches sliced from tensors) against the tutorial
loop on the same tensors, and the Dataset path (a user's data factory returning torch
Datasets, served by a DataLoader) against a hand-written loop over the same DataLoader.
Prints each loop's rate (training examples per second), and their ratios.

With `--signals`: what the training's own signals (grad_norm, update_ratio, ...:
trainable/signals.py) cost, the trainer with them against the trainer without, on the
MLP above and on a deeper one (8 hidden layers), epoch by epoch in turn: the wall and the
CPU time of each (one thread: the CPU time is less shaken by other jobs on the machine),
and, to see the cost above the machine's noise, the trainer measuring every step, whose
extra time divided by the sampling period is what the sampled signals cost.

    python -m bench.trainable [--epochs 5] [--repeats 3] [--batch-size 64]
    python -m bench.trainable --signals [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from bench.record import RESULTS, write_record
from orchestrator.spec.settings import DatasetConfig, TrialConfig
from orchestrator.trainable.data import load_dataset
from orchestrator.trainable.signals import SAMPLE_EVERY
from orchestrator.trainable.trainer import Trainer

DATASET = {"name": "synthetic", "n_samples": 20000, "n_features": 32, "n_classes": 4}
# the Dataset path: a user's data factory (this module's `rows`) returning Datasets
USER_DATASET = {"factory": "bench.trainable:rows"}


class Rows(TensorDataset):
    classes = list(range(DATASET["n_classes"]))


def rows(seed: int) -> tuple[Rows, Rows]:
    """The same split of the same synthetic data, as torch Datasets."""
    data = load_dataset(DatasetConfig(**DATASET), seed)
    return Rows(data.x_train, data.y_train), Rows(data.x_val, data.y_val)


def config(epochs: int, batch_size: int, dataset: dict = DATASET, depth: int = 2) -> TrialConfig:
    return TrialConfig.model_validate({"train": {
        "dataset": dataset, "model": {"name": "mlp", "hidden": 128, "depth": depth},
        "epochs": epochs, "batch_size": batch_size,
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "schedule": {"name": "cosine", "warmup_epochs": 1},
        "early_stopping": {"patience": None},
    }})


def ours(epochs: int, batch_size: int, dataset: dict = DATASET) -> float:
    trainer = Trainer(config(epochs, batch_size, dataset))
    started = time.perf_counter()
    while not trainer.finished:
        trainer.train_epoch()
    return trainer.data.n_train * epochs / (time.perf_counter() - started)


def signals_cost(args) -> None:
    """The signals' cost: three trainers of the same run (same seed, same work: measuring
    changes nothing in the training), without the signals, with them and measuring every
    step, advanced one epoch each in turn, the order rotating from epoch to epoch, so
    that the machine's drift falls on the three alike; each epoch's wall and CPU time."""
    epochs = args.epochs * args.repeats
    print(f"the training's signals: MLP 32-128x{{2,8}}-4, {DATASET['n_samples']} synthetic "
          f"examples, batch {args.batch_size}, {epochs} epochs each, interleaved, 1 thread; "
          f"a measured step every {SAMPLE_EVERY} (median of the per-epoch ratios)")
    numbers = {}
    for depth in (2, 8):
        trainers = {name: Trainer(config(epochs, args.batch_size, depth=depth),
                                  signals=name != "without")
                    for name in ("without", "with", "every step")}
        trainers["every step"].signals.every = 1
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in trainers}
        names = list(trainers)
        for epoch in range(epochs):
            for name in names[epoch % 3:] + names[:epoch % 3]:
                wall, cpu = time.perf_counter(), time.thread_time()
                trainers[name].train_epoch()
                times[name].append((time.perf_counter() - wall, time.thread_time() - cpu))
        out = {}
        for kind, i in (("wall", 0), ("cpu", 1)):
            base = [t[i] for t in times["without"]]
            over = {name: statistics.median(t[i] / b for t, b in zip(times[name], base)) - 1
                    for name in ("with", "every step")}
            out[kind] = {"epoch_without_s": statistics.median(base),
                         "with_over_without": over["with"],
                         "every_step_over_without": over["every step"],
                         "projected": over["every step"] / SAMPLE_EVERY}
        numbers[f"depth{depth}"] = out
        for kind, o in out.items():
            print(f"  depth {depth} {kind:4}: an epoch {o['epoch_without_s']:.3f} s without; "
                  f"with {o['with_over_without']:+.2%}; every step measured "
                  f"{o['every_step_over_without']:+.1%} (/{SAMPLE_EVERY} = "
                  f"{o['projected']:+.2%} sampled)")
    write_record("trainable", args.out, args, every=SAMPLE_EVERY, **numbers)


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


def minimal_loader(epochs: int, batch_size: int) -> float:
    """A hand-written loop over the same Datasets through the same kind of DataLoader
    (shuffled training batches, validation in batches of the trainer's eval size)."""
    reference = Trainer(config(epochs, batch_size, USER_DATASET))
    model = reference.model
    train, val = rows(0)
    train_loader = DataLoader(train, batch_size=batch_size, shuffle=True)
    val_loader = DataLoader(val, batch_size=reference.train_cfg.eval_batch_size)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for x, y in train_loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for x, y in val_loader:
                F.cross_entropy(model(x), y).item()
    return len(train) * epochs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--signals", action="store_true",
                        help="the cost of the training's signals instead")
    parser.add_argument("--out", default=str(RESULTS), help="folder for the JSON record")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.signals:
        signals_cost(args)
        return
    runs = {
        "minimal": lambda: minimal(args.epochs, args.batch_size),
        "trainable": lambda: ours(args.epochs, args.batch_size),
        "minimal DataLoader": lambda: minimal_loader(args.epochs, args.batch_size),
        "trainable Dataset": lambda: ours(args.epochs, args.batch_size, USER_DATASET),
    }
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            rates[name].append(run())
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"MLP 32-128-128-4, {DATASET['n_samples']} synthetic examples, batch "
          f"{args.batch_size}, {args.epochs} epochs x {args.repeats} runs, 1 thread (median)")
    for name, rate in med.items():
        print(f"  {name:18} {rate:12,.0f} examples/s")
    print(f"  ratio trainable/minimal (tensor path):           "
          f"{med['trainable'] / med['minimal']:.3f}")
    print(f"  ratio trainable Dataset/minimal DataLoader:      "
          f"{med['trainable Dataset'] / med['minimal DataLoader']:.3f}")


if __name__ == "__main__":
    main()
