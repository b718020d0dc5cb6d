"""Overhead of the orchestrator against a bare Ray Tune script.

Runs the same 32 trials (an MLP on the synthetic data set, about 2 s of training
each) through `sweep run`'s library path and through a hand-written Ray Tune script
(reuse_actors on), each in a fresh process with an embedded 2-CPU Ray, and prints
wall time / ideal for both, where ideal = sum of per-trial work / concurrency and
a trial's work is the time its own training loop measured.

    python -m bench.overhead [--trials 32] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONCURRENCY = 2
DATASET = {"name": "synthetic", "n_samples": 25000, "n_features": 32, "n_classes": 4}
MODEL = {"name": "mlp", "hidden": 128, "depth": 2}


def run_orchestrator(trials: int, epochs: int, storage: str, checkpoint_every: int = 1) -> dict:
    from orchestrator.runner import run_sweep
    from orchestrator.spec import spec_from_mapping

    spec = spec_from_mapping({
        "name": "overhead", "num_samples": trials, "max_concurrent_trials": CONCURRENCY,
        "train": {"dataset": DATASET, "model": MODEL, "epochs": epochs, "batch_size": 64,
                  "early_stopping": {"patience": None}, "checkpoint_every": checkpoint_every},
        "search_space": {"optimizer.lr": {"loguniform": [0.01, 0.1]}},
        "scheduler": {"name": "fifo"}, "resources": {"cpu": 1}, "storage": storage,
    })
    import ray

    ray.init(address="local", num_cpus=CONCURRENCY, include_dashboard=False,
             log_to_driver=False)
    outcome = run_sweep(spec, quiet=True)
    work = outcome.history.groupby("trial_id")["epoch_s"].sum()
    return {"wall_s": outcome.elapsed_s, "work_s": float(work.sum()), "trials": len(work)}


def _bare_trainable(config: dict) -> None:
    """A minimal hand-written trainable: same data, model and batch size."""
    import torch
    import torch.nn.functional as F
    from ray import tune
    from sklearn.datasets import make_classification

    torch.set_num_threads(1)
    x, y = make_classification(n_samples=DATASET["n_samples"], n_features=DATASET["n_features"],
                               n_informative=16, n_redundant=8, n_classes=DATASET["n_classes"],
                               n_clusters_per_class=1, random_state=0)
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    n_val = len(x) // 5
    xv, yv, xt, yt = x[:n_val], y[:n_val], x[n_val:], y[n_val:]
    h = MODEL["hidden"]
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], h), torch.nn.ReLU(),
                                torch.nn.Linear(h, h), torch.nn.ReLU(), torch.nn.Linear(h, 4))
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    work = 0.0
    for epoch in range(config["epochs"]):
        started = time.perf_counter()
        model.train()
        for idx in torch.randperm(len(xt)).split(64):
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val_loss = F.cross_entropy(model(xv), yv).item()
        work += time.perf_counter() - started
        tune.report({"epoch": epoch + 1, "val_loss": val_loss, "work_s": work})


def run_bare(trials: int, epochs: int, storage: str, checkpoint_every: int = 1) -> dict:
    import ray
    from ray import tune

    ray.init(address="local", num_cpus=CONCURRENCY, include_dashboard=False,
             log_to_driver=False)
    tuner = tune.Tuner(
        tune.with_resources(_bare_trainable, {"cpu": 1}),
        param_space={"lr": tune.loguniform(0.01, 0.1), "epochs": epochs},
        tune_config=tune.TuneConfig(num_samples=trials, reuse_actors=True,
                                    max_concurrent_trials=CONCURRENCY),
        run_config=tune.RunConfig(name="bare", storage_path=storage, verbose=0),
    )
    started = time.monotonic()
    grid = tuner.fit()
    wall = time.monotonic() - started
    work = sum(r.metrics["work_s"] for r in grid)
    return {"wall_s": wall, "work_s": work, "trials": len(grid)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--checkpoint-every", type=int, default=1,
                        help="the trainable's checkpoint interval in epochs (default 1)")
    parser.add_argument("--mode", choices=["orchestrator", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        with tempfile.TemporaryDirectory() as storage:
            run = run_orchestrator if args.mode == "orchestrator" else run_bare
            row = run(args.trials, args.epochs, storage, args.checkpoint_every)
            print("RESULT " + json.dumps(row), flush=True)
        return

    rows = {}
    for mode in ("bare", "orchestrator"):
        out = subprocess.run(
            [sys.executable, "-m", "bench.overhead", "--mode", mode, "--trials", str(args.trials),
             "--epochs", str(args.epochs), "--checkpoint-every", str(args.checkpoint_every)],
            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
        )
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"{mode} run failed:\n{out.stderr[-3000:]}")
        rows[mode] = json.loads(line.removeprefix("RESULT "))
    print(f"{args.trials} trials x {args.epochs} epochs, {CONCURRENCY} concurrent, 1 CPU each, "
          f"orchestrator checkpoints every {args.checkpoint_every} epoch(s)")
    print(f"{'':14}{'wall s':>9}{'work s':>9}{'ideal s':>9}{'wall/ideal':>12}{'s/trial':>9}")
    for mode, row in rows.items():
        ideal = row["work_s"] / CONCURRENCY
        print(f"{mode:14}{row['wall_s']:9.1f}{row['work_s']:9.1f}{ideal:9.1f}"
              f"{row['wall_s'] / ideal:12.2f}x{row['work_s'] / row['trials']:9.2f}")


if __name__ == "__main__":
    main()
