"""Overhead of the orchestrator against a bare Ray Tune script.

Runs the same 32 trials (an MLP on the synthetic data set, about 2 s of training
each), each variant in a fresh process with an embedded 2-CPU Ray:

  bare                  a hand-written Ray Tune script (reuse_actors on, no checkpoints)
  orchestrator/every    `sweep run`'s library path, a checkpoint every epoch (the old
                        default), FIFO
  orchestrator/tune logs  the default checkpoint policy with Tune's CSV and TensorBoard
                        loggers back on (TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=0), FIFO
  orchestrator          the default checkpoint policy, FIFO
  orchestrator+asha     the default policy under ASHA (grace 2, factor 3), as users run it

and prints wall time / ideal for each, where ideal = sum of per-trial work / concurrency
and a trial's work is the time its own training loop measured (ASHA does less work, so
compare its ratio, not its wall time). Writes the numbers to bench/results/overhead-*.json.

    python -m bench.overhead [--trials 32] [--epochs 10] [--repeats 3] [--variants ...]

Each round runs every variant once; the table shows each number's median over the
rounds and the range of wall / ideal.

Goal (issue 11): the orchestrator ahead of bare Ray Tune in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.record import bench_parser, median_run, write_record

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = 2
DATASET = {"name": "synthetic", "n_samples": 25000, "n_features": 32, "n_classes": 4}
MODEL = {"name": "mlp", "hidden": 128, "depth": 2}


def driver_cpu_s() -> float:
    """CPU seconds of this process (the driver): on 2 cores, taken from the trials."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_orchestrator(trials: int, epochs: int, storage: str, checkpoint_every: int | None,
                     scheduler: str = "fifo") -> dict:
    from orchestrator.engine.run import run_sweep
    from orchestrator.spec.model import spec_from_mapping

    spec = spec_from_mapping({
        "name": "overhead", "num_samples": trials, "max_concurrent_trials": CONCURRENCY,
        "train": {"dataset": DATASET, "model": MODEL, "epochs": epochs, "batch_size": 64,
                  "early_stopping": {"patience": None}, "checkpoint_every": checkpoint_every},
        "search_space": {"optimizer.lr": {"loguniform": [0.01, 0.1]}},
        "scheduler": ({"name": "fifo"} if scheduler == "fifo" else
                      {"name": "asha", "grace_period": 2, "reduction_factor": 3}),
        "resources": {"cpu": 1}, "storage": storage,
    })
    import ray

    ray.init(address="local", num_cpus=CONCURRENCY, include_dashboard=False,
             log_to_driver=False)
    cpu = driver_cpu_s()
    outcome = run_sweep(spec)
    cpu = driver_cpu_s() - cpu
    work = outcome.history.groupby("trial_id")["epoch_s"].sum()
    return {"wall_s": outcome.elapsed_s, "work_s": float(work.sum()), "trials": len(work),
            "driver_cpu_s": cpu}


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


def run_bare(trials: int, epochs: int, storage: str) -> dict:
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
    started, cpu = time.monotonic(), driver_cpu_s()
    grid = tuner.fit()
    wall, cpu = time.monotonic() - started, driver_cpu_s() - cpu
    work = sum(r.metrics["work_s"] for r in grid)
    return {"wall_s": wall, "work_s": work, "trials": len(grid), "driver_cpu_s": cpu}


VARIANTS = {  # name: (mode, checkpoint_every, scheduler, environment)
    "bare": ("bare", None, "fifo", {}),
    "orchestrator/every": ("orchestrator", 1, "fifo", {}),
    "orchestrator/tune logs": ("orchestrator", None, "fifo",
                               {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "0"}),
    "orchestrator": ("orchestrator", None, "fifo", {}),
    "orchestrator+asha": ("orchestrator", None, "asha", {}),
}


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="the variants to run (all by default)")
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        mode, every, scheduler, _ = VARIANTS[args.variant]
        with tempfile.TemporaryDirectory() as storage:
            row = (run_bare(args.trials, args.epochs, storage) if mode == "bare" else
                   run_orchestrator(args.trials, args.epochs, storage, every, scheduler))
            print("RESULT " + json.dumps(row), flush=True)
        return

    # rounds of every variant in turn: the machine's drift falls on all of them alike
    runs: dict[str, list[dict]] = {name: [] for name in args.variants}
    for _ in range(args.repeats):
        for name in args.variants:
            runs[name].append(run_variant(name, args.trials, args.epochs))
    rows = {name: median_run(found) for name, found in runs.items()}
    print(f"{args.trials} trials x {args.epochs} epochs, {CONCURRENCY} concurrent, 1 CPU each; "
          f"median of {args.repeats} interleaved runs")
    print(f"{'':24}{'wall s':>9}{'work s':>9}{'ideal s':>9}{'wall/ideal':>12}"
          f"{'(range)':>14}{'driver cpu s':>14}")
    for name, row in rows.items():
        ratios = [r["ratio"] for r in runs[name]]
        print(f"{name:24}{row['wall_s']:9.1f}{row['work_s']:9.1f}"
              f"{row['work_s'] / CONCURRENCY:9.1f}{row['ratio']:11.2f}x"
              f"{f'({min(ratios):.2f}-{max(ratios):.2f})':>14}{row['driver_cpu_s']:14.1f}")
    if {"bare", "orchestrator"} <= set(rows):
        bare, ours = rows["bare"]["ratio"], rows["orchestrator"]["ratio"]
        print(f"the orchestrator (default policy) is {ours:.2f}x the ideal against bare Ray "
              f"Tune's {bare:.2f}x (goal: ahead: {'met' if ours < bare else 'missed'})")
    write_record("overhead", args.out, args, rows=rows, runs=runs)


def run_variant(name: str, trials: int, epochs: int) -> dict:
    """One variant in a fresh process (its own Ray); its numbers and wall / ideal."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.overhead", "--variant", name, "--trials", str(trials),
         "--epochs", str(epochs)],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **VARIANTS[name][3]},
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"{name} run failed:\n{out.stderr[-3000:]}")
    row = json.loads(line.removeprefix("RESULT "))
    row["ratio"] = row["wall_s"] / (row["work_s"] / CONCURRENCY)
    return row



if __name__ == "__main__":
    main()
