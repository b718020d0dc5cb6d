"""Data-parallel trials: the epoch throughput of one worker against several.

One trial of the shared trainable on a model where compute dominates (an MLP of
`--hidden` units, `--depth` layers, on synthetic data), the same global batch and seed,
run as 1 worker of `--workers` CPUs (torch threads) and as `--workers` DDP workers of 1
CPU each: the same CPUs, split between processes that all-reduce their gradients every
step. `--gpu`: 1 worker of 1 GPU against `--workers` workers of 1 GPU each (nccl): the
GPU script's variant. Throughput: training examples per second of the median epoch
(history's epoch_s: training plus validation, on rank 0); wall: the whole sweep, the
group's start included. Writes the numbers, the machine and the versions to
bench/results/ddp-<time>.json.

    python -m bench.ddp [--workers 2] [--epochs 4] [--rows 40000] [--gpu]
"""

from __future__ import annotations

import tempfile

from bench.record import bench_parser, write_record


def run(label: str, workers: int, cpu: float, gpu: float, args, storage: str) -> dict:
    from orchestrator.engine.run import run_sweep
    from orchestrator.spec.model import spec_from_mapping

    rows = args.rows
    spec = spec_from_mapping({
        "name": label, "num_samples": 1, "seed": 0, "storage": storage,
        "scheduler": {"name": "fifo"},
        "resources": {"workers": workers, "cpu": cpu, "gpu": gpu},
        "train": {
            "dataset": {"name": "synthetic", "n_samples": rows, "n_features": 64},
            "model": {"name": "mlp", "hidden": args.hidden, "depth": args.depth},
            "epochs": args.epochs, "batch_size": args.batch_size,
            "early_stopping": {"patience": None},
            "optimizer": {"name": "sgd", "lr": 0.05},
        },
    })
    outcome = run_sweep(spec)
    assert outcome.errored == 0, outcome.trials["error"].tolist()
    history = outcome.history
    n_train = rows - round(rows * spec.train.dataset.val_fraction)
    epoch_s = float(history["epoch_s"].median())
    return {"label": label, "workers": workers, "cpu_per_worker": cpu,
            "gpu_per_worker": gpu, "epoch_s": round(epoch_s, 4),
            "examples_per_s": round(n_train / epoch_s, 1),
            "wall_s": round(outcome.elapsed_s, 2),
            "train_loss": [round(v, 6) for v in history.sort_values("epoch")["train_loss"]]}


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rows", type=int, default=40000)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--gpu", action="store_true", help="1 GPU per worker (nccl)")
    args = parser.parse_args()
    n = args.workers
    with tempfile.TemporaryDirectory() as storage:
        if args.gpu:
            one = run("one-worker", 1, 1, 1, args, storage)
            many = run(f"{n}-workers", n, 1, 1, args, storage)
        else:
            one = run("one-worker", 1, n, 0, args, storage)
            many = run(f"{n}-workers", n, 1, 0, args, storage)
    ratio = many["examples_per_s"] / one["examples_per_s"]
    device = "GPU" if args.gpu else "CPU"
    print(f"one trial, MLP {args.depth}x{args.hidden}, {args.rows} rows, global batch "
          f"{args.batch_size}, {args.epochs} epochs, {device}")
    print(f"{'':12}{'examples/s':>12}{'epoch s':>9}{'wall s':>9}")
    for row in (one, many):
        print(f"{row['label']:12}{row['examples_per_s']:12,.0f}{row['epoch_s']:9.3f}"
              f"{row['wall_s']:9.1f}")
    print(f"{n} workers: {ratio:.2f}x the epoch throughput of one")
    write_record("ddp", args.out, args, rows=[one, many], throughput_ratio=ratio)


if __name__ == "__main__":
    main()
