"""Time to a target accuracy against the peers, on the quickstart's search.

The same search space, model, data and per-epoch training code (the shared `Trainer`)
under four drivers, on the same CPUs, two trials at a time, for each seed:

  sweep          `run_sweep` in-process: random search + ASHA (grace 2, factor 3) on
                 Ray Tune, the quickstart spec as shipped; clock from before Ray starts
  sweep command  the whole `sweep run` command as a fresh process (imports, Ray start-up)
  optuna         Optuna TPE + its Hyperband pruner (min 2, factor 3), 2 worker threads,
                 a hand-written objective around the same Trainer (one torch thread each)
  random         Optuna random search without early termination, 2 worker threads

For each: wall time, best val_acc, the time the target val_acc was first reached, and
the best val_acc within a fixed wall-clock budget; the median and range over the seeds
go to the terminal and, with every raw number, to bench/results/peers-<time>.json.

    python -m bench.peers [--seeds 0 1 2] [--target 0.97] [--budget-s 10]

Goal (issue 11): the sweep itself no slower than Optuna and the whole command within
1.5x of it, at the same or better best accuracy.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.record import bench_parser, write_record

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "search_spaces" / "digits_mlp_asha.yaml"


# -- the orchestrator ------------------------------------------------------------

def _timeline_callback(timeline: list):
    from ray.tune import Callback

    class Timeline(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            timeline.append((time.time(), float(result["val_acc"])))

        def __getstate__(self):  # Tune snapshots its callbacks: the list stays here
            return {}

    return Timeline()


def run_sweep_in_process(seed: int, trials: int, storage: str) -> dict:
    from orchestrator.engine.run import run_sweep
    from orchestrator.spec.model import load_spec

    spec = load_spec(QUICKSTART, [f"name=peers-{seed}", f"storage={storage}",
                                  f"seed={seed}", f"num_samples={trials}"])
    timeline: list = []
    started = time.time()
    outcome = run_sweep(spec, callbacks=[_timeline_callback(timeline)])
    wall = time.time() - started
    return {"wall_s": wall, "sweep_s": outcome.elapsed_s,
            "best": float(outcome.trials["best_val_acc"].max()),
            "epochs": len(outcome.history),
            "timeline": [(t - started, acc) for t, acc in timeline]}


def run_sweep_command(seed: int, trials: int, storage: str) -> dict:
    started = time.time()
    subprocess.run([sys.executable, "-m", "orchestrator", "run", str(QUICKSTART), "--name",
                    f"cmd-{seed}", "--storage", storage, "--seed", str(seed),
                    "--num-samples", str(trials)], check=True, capture_output=True)
    return {"wall_s": time.time() - started}


# -- Optuna: what a user writes by hand ------------------------------------------------

def _optuna_objective(train: dict, seed: int, timeline: list, lock: threading.Lock):
    import optuna

    from orchestrator.spec.dotted import set_dotted
    from orchestrator.spec.settings import TrialConfig
    from orchestrator.trainable.trainer import Trainer

    def objective(trial: optuna.Trial) -> float:
        settings = {
            "optimizer.lr": trial.suggest_float("lr", 1e-4, 0.3, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
            "model.depth": trial.suggest_int("depth", 1, 3),
            "model.hidden": trial.suggest_categorical("hidden", [32, 64, 128, 256]),
            "model.dropout": trial.suggest_float("dropout", 0.0, 0.5),
        }
        config = json.loads(json.dumps(train))
        for key, value in settings.items():
            set_dotted(config, key, value)
        trainer = Trainer(TrialConfig.model_validate({"train": config, "seed": seed}),
                          trial_index=trial.number)
        best = 0.0
        while not trainer.finished:
            row = trainer.train_epoch()
            best = max(best, row["val_acc"])
            with lock:
                timeline.append((time.time(), row["val_acc"]))
            trial.report(row["val_acc"], row["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()
        return best

    return objective


def run_optuna(seed: int, trials: int, pruned: bool) -> dict:
    import optuna
    import torch
    import yaml

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)  # two worker threads on two cores, as Ray gives each trial 1
    train = yaml.safe_load(QUICKSTART.read_text())["train"]
    if pruned:
        sampler = optuna.samplers.TPESampler(seed=seed)
        pruner = optuna.pruners.HyperbandPruner(min_resource=2, max_resource=train["epochs"],
                                                reduction_factor=3)
    else:
        sampler, pruner = optuna.samplers.RandomSampler(seed=seed), optuna.pruners.NopPruner()
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    timeline: list = []
    started = time.time()
    study.optimize(_optuna_objective(train, seed, timeline, threading.Lock()),
                   n_trials=trials, n_jobs=2)
    wall = time.time() - started
    done = [t for t in study.trials if t.value is not None or t.intermediate_values]
    best = max(max(t.intermediate_values.values()) for t in done if t.intermediate_values)
    return {"wall_s": wall, "best": float(best),
            "epochs": sum(len(t.intermediate_values) for t in study.trials),
            "timeline": [(t - started, acc) for t, acc in timeline]}


# -- reading the timelines -------------------------------------------------------------

def time_to(timeline: list, target: float) -> float | None:
    hits = [t for t, acc in timeline if acc >= target]
    return min(hits) if hits else None


def best_within(timeline: list, budget_s: float) -> float | None:
    seen = [acc for t, acc in timeline if t <= budget_s]
    return max(seen) if seen else None


def summary(values: list) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "never"
    text = f"{statistics.median(known):.3g} ({min(known):.3g}-{max(known):.3g})"
    return text + (f" [{len(values) - len(known)} never]" if len(known) < len(values) else "")


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--budget-s", type=float, default=10.0)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"sweep": [], "sweep command": [], "optuna": [],
                                   "random": []}
    with tempfile.TemporaryDirectory() as storage:
        for seed in args.seeds:  # each seed runs all four, so drift hits all alike
            runs["sweep"].append(run_sweep_in_process(seed, args.trials, storage))
            runs["sweep command"].append(run_sweep_command(seed, args.trials, storage))
            runs["optuna"].append(run_optuna(seed, args.trials, pruned=True))
            runs["random"].append(run_optuna(seed, args.trials, pruned=False))
            print(f"seed {seed}: " + ", ".join(
                f"{name} {rows[-1]['wall_s']:.1f}s" for name, rows in runs.items()), flush=True)
    for rows in runs.values():
        for row in rows:
            if "timeline" in row:
                row["time_to_target_s"] = time_to(row["timeline"], args.target)
                row["best_within_budget"] = best_within(row["timeline"], args.budget_s)
    print(f"\n{args.trials} trials of the quickstart's search, 2 at a time, seeds {args.seeds}"
          f": median (range)")
    print(f"{'':15}{'wall s':>26}{'best val_acc':>26}{'s to ' + str(args.target):>26}"
          f"{'best in ' + str(args.budget_s) + ' s':>26}")  # cells: a space, then 25
    for name, rows in runs.items():
        cells = [summary([r.get(k) for r in rows]) if k in rows[0] else "-"
                 for k in ("wall_s", "best", "time_to_target_s", "best_within_budget")]
        print(f"{name:15}" + "".join(f" {c:>25}" for c in cells))
    sweep_s = statistics.median(r["sweep_s"] for r in runs["sweep"])
    command_s = statistics.median(r["wall_s"] for r in runs["sweep command"])
    optuna_s = statistics.median(r["wall_s"] for r in runs["optuna"])
    best_gap = (statistics.median(r["best"] for r in runs["sweep"])
                - statistics.median(r["best"] for r in runs["optuna"]))
    print(f"the sweep itself (Tune's fit) {sweep_s:.1f}s = {sweep_s / optuna_s:.2f}x Optuna "
          f"(goal <= 1: {'met' if sweep_s <= optuna_s else 'missed'}); the whole command "
          f"{command_s / optuna_s:.2f}x (goal <= 1.5: "
          f"{'met' if command_s <= 1.5 * optuna_s else 'missed'}); best val_acc "
          f"{best_gap * 100:+.2f} points against Optuna's (goal >= 0: "
          f"{'met' if best_gap >= 0 else 'missed'})")
    write_record("peers", args.out, args, runs=runs, sweep_over_optuna=sweep_s / optuna_s,
                 command_over_optuna=command_s / optuna_s, best_gap_points=best_gap * 100)


if __name__ == "__main__":
    main()
