"""Refine and warm start against one bigger sweep and against Optuna, at equal trials.

On three tasks, for each seed, three ways to spend 2N trials (same scheduler, same
per-trial epochs):

  one-shot   one sweep of 2N trials, the task's spec as written (random search)
  refine     N trials, then `sweep refine` (library call) and the refined spec's N
             trials, warm-started from the first (its best run again first)
  optuna     one sweep of 2N trials with Optuna's TPE instead of random search

Tasks: `digits-low-lr` the quickstart's digits MLP with its learning-rate range moved
deliberately low (1e-5..3e-3, the good rates above it), 12 epochs; `diabetes` the
diabetes regression example as shipped (val_r2); `synthetic-wide-lr` a 4-class synthetic
set with an SGD MLP searched over 1e-4..10 (the top decades diverge).

Per run: the best metric (best_<metric> over its trials), the epochs it ran, and the
epochs it took to first reach the one-shot's best of the same seed (epochs counted in
the order they ended, across both sweeps of `refine`). Printed as medians over seeds,
written with every raw number to bench/results/refine-<time>.json. One 2-CPU Ray is
started once and shared by every sweep.

    python -m bench.refine [--tasks ...] [--seeds 0 1 2] [--n 8]

Goal (issue 29): refine's median best at least the one-shot's on every task, and it
reaches the one-shot's best with fewer epochs on two of three.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import pandas as pd

from bench.record import bench_parser, write_record

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "search_spaces" / "digits_mlp_asha.yaml"
DIABETES = REPO / "examples" / "diabetes_regression" / "spec.yaml"

TASKS: dict[str, tuple[Path, list[str]]] = {
    "digits-low-lr": (QUICKSTART, [
        "search_space.optimizer.lr={loguniform: [1.0e-5, 3.0e-3]}", "train.epochs=12",
        "scheduler={name: asha, grace_period: 2, reduction_factor: 3}"]),
    "diabetes": (DIABETES, []),
    "synthetic-wide-lr": (QUICKSTART, [
        "train.dataset={name: synthetic, n_samples: 3000, n_features: 20, n_classes: 4}",
        "train.model={name: mlp, hidden: 64, depth: 2, activation: relu}", "train.epochs=10",
        "search_space={optimizer.lr: {loguniform: [1.0e-4, 10.0]}, "
        "batch_size: {choice: [32, 64, 128]}}",
        "scheduler={name: asha, grace_period: 2, reduction_factor: 3}"]),
}


EPOCHS: list[str] = []  # --epochs: train.epochs of every task


def _spec(task: str, name: str, seed: int, trials: int, storage: str, *extra: str):
    from orchestrator.spec.model import load_spec

    path, changes = TASKS[task]
    return load_spec(path, [*changes, *EPOCHS, f"name={name}", f"storage={storage}",
                            f"seed={seed}", f"num_samples={trials}",
                            "max_concurrent_trials=2", *extra])


def _epochs(outcome) -> pd.DataFrame:
    """Every epoch of a sweep in the order it ended: its trial's start (unix seconds)
    plus the trial's time at that epoch."""
    started = outcome.trials.set_index("trial_id")["started_at"]
    history = outcome.history
    at = history["trial_id"].map(started) + history["time_total_s"]
    return history.assign(_at=at).sort_values("_at", kind="stable")


def _reach(outcomes: list, metric: str, mode: str, target: float) -> int | None:
    """Epochs run (in the order they ended, sweep after sweep) until `metric` first
    reached `target`; None when it never did."""
    count = 0
    for outcome in outcomes:
        for value in _epochs(outcome)[metric]:
            count += 1
            if value == value and (value >= target if mode == "max" else value <= target):
                return count
    return None


def _run(spec, address: str):
    from orchestrator.engine.run import run_sweep

    return run_sweep(spec, address=address)


def one_task(task: str, seed: int, n: int, storage: str, address: str) -> dict:
    from orchestrator.analysis.refine import refine
    from orchestrator.analysis.report import rediagnosed
    from orchestrator.results.load import load_sweep
    from orchestrator.results.storage import as_location
    from orchestrator.spec.model import load_spec

    spec = _spec(task, f"{task}-one-{seed}", seed, 2 * n, storage)
    metric, mode = spec.metric, spec.mode
    one = _run(spec, address)
    best = schema_best(metric)
    pick = max if mode == "max" else min
    target = pick(one.trials[best].dropna())

    first = _run(_spec(task, f"{task}-r-{seed}", seed, n, storage), address)
    tables = rediagnosed(load_sweep(as_location(first.experiment_dir)))
    out = Path(storage) / f"{task}-r-{seed}-r2.yaml"
    refined = refine(tables, out, n, storage)
    out.write_text(refined.text)
    second = _run(load_spec(out), address)

    tpe = _run(_spec(task, f"{task}-tpe-{seed}", seed, 2 * n, storage,
                     "searcher={name: optuna}"), address)

    def row(outcomes: list) -> dict:
        values = pd.concat([o.trials[best] for o in outcomes]).dropna()
        return {"best": float(pick(values)),
                "epochs": int(sum(len(o.history) for o in outcomes)),
                "to_target": _reach(outcomes, metric, mode, target)}

    return {
        "task": task, "seed": seed, "metric": metric, "mode": mode, "target": float(target),
        "one-shot": row([one]),
        "refine": {**row([first, second]),
                   "changes": [f"{c.key}: {c.before} -> {c.after}" for c in refined.changes
                               if c.after != c.before],
                   "first_best": float(pick(first.trials[best].dropna()))},
        "optuna": row([tpe]),
    }


def schema_best(metric: str) -> str:
    from orchestrator.results import schema

    return schema.best_column(metric)


ARMS = ("one-shot", "refine", "optuna")


def _median(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def report(runs: list[dict], tasks: list[str]) -> dict:
    """Per task and arm: the median best, epochs and epochs to the one-shot's best; and
    the goal, read from those medians."""
    table: dict = {}
    for task in tasks:
        mine = [r for r in runs if r["task"] == task]
        table[task] = {arm: {
            "best": _median([r[arm]["best"] for r in mine]),
            "epochs": _median([r[arm]["epochs"] for r in mine]),
            "to_target": _median([r[arm]["to_target"] for r in mine]),
            "never": sum(r[arm]["to_target"] is None for r in mine)} for arm in ARMS}
        table[task]["mode"] = mine[0]["mode"]
    print(f"\n{'task':20}{'arm':10}{'median best':>13}{'epochs':>9}{'to one-shot best':>18}")
    for task, arms in table.items():
        for arm in ARMS:
            row = arms[arm]
            reach = "-" if row["to_target"] is None else f"{row['to_target']:.0f}"
            if row["never"]:
                reach += f" ({row['never']} never)"
            print(f"{task:20}{arm:10}{row['best']:13.4f}{row['epochs']:9.0f}{reach:>18}")
    at_least = {t: (a["refine"]["best"] >= a["one-shot"]["best"]) if a["mode"] == "max"
                else (a["refine"]["best"] <= a["one-shot"]["best"]) for t, a in table.items()}
    faster = {t: a["refine"]["to_target"] is not None and a["refine"]["never"] == 0 and
              a["refine"]["to_target"] < a["one-shot"]["to_target"] for t, a in table.items()}
    met = all(at_least.values()) and sum(faster.values()) >= min(2, len(table))
    print(f"refine's median best at least the one-shot's: "
          f"{', '.join(f'{t} {at_least[t]}' for t in table)}; fewer epochs to the one-shot's "
          f"best: {', '.join(f'{t} {faster[t]}' for t in table)} "
          f"(goal: {'met' if met else 'missed'})")
    return {"table": table, "at_least": at_least, "faster": faster, "goal_met": met}


def main() -> None:
    import ray

    parser = bench_parser(__doc__)
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=8, help="trials of each half")
    parser.add_argument("--epochs", type=int, help="train.epochs of every task (a smoke run)")
    args = parser.parse_args()
    if args.epochs:
        EPOCHS.append(f"train.epochs={args.epochs}")
    context = ray.init(address="local", num_cpus=2, include_dashboard=False,
                       log_to_driver=False)
    address = context.address_info["gcs_address"]
    runs = []
    try:
        with tempfile.TemporaryDirectory() as storage:
            for task in args.tasks:
                for seed in args.seeds:
                    runs.append(one_task(task, seed, args.n, storage, address))
                    r = runs[-1]
                    print(f"{task} seed {seed}: " + ", ".join(
                        f"{arm} {r[arm]['best']:.4f}" for arm in ARMS), flush=True)
    finally:
        ray.shutdown()
    summary = report(runs, args.tasks)
    write_record("refine", args.out, args, runs=runs, **summary)


if __name__ == "__main__":
    main()
