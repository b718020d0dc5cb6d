"""Build the labelled corpus of real curves that `tests/test_diagnosis_corpus.py` checks.

Runs every sweep spec in `specs/` with the orchestrator (embedded Ray, the shared
trainable), and keeps each trial's history rows and the trial-row fields the diagnosis
reads in two small Parquet files next to this script:

    curves.parquet   curve_id, epoch, lr, train_loss, val_loss, val_acc
    trials.parquet   curve_id, sweep, metric, mode, stop_reason, epochs, baselines, config

A curve is named `<sweep>/<trial index>`. The labels are not made here: a person reads
each curve (`--show` prints them) and writes its label and reason into `labels.yaml`.

    python tests/data/diagnosis/build.py               # (re)build every sweep
    python tests/data/diagnosis/build.py --only NAME   # add or rebuild one sweep
    python tests/data/diagnosis/build.py --show [NAME] # print the curves to label

Rebuilding an ASHA sweep can stop different trials (concurrency), so relabel after it.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
CURVES, TRIALS = HERE / "curves.parquet", HERE / "trials.parquet"
KEEP_CONFIG = ["config.optimizer.name", "config.optimizer.lr", "config.schedule.name",
               "config.model.hidden", "config.model.depth", "config.batch_size",
               "config.dataset.name", "config.early_stopping.patience", "config.epochs"]


def run_one(spec_path: Path, storage: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    from orchestrator.runner import run_sweep
    from orchestrator.spec import load_spec

    spec = load_spec(spec_path, [f"storage={storage}"])
    outcome = run_sweep(spec, quiet=True)
    trials, history = outcome.trials, outcome.history
    index = {t: f"{spec.name}/{int(t.rsplit('_', 1)[-1]):02d}" for t in trials["trial_id"]}
    curves = history.assign(curve_id=history["trial_id"].map(index))[
        ["curve_id", "epoch", "lr", "train_loss", "val_loss", "val_acc"]]
    from orchestrator.results.schema import BASELINE_COLUMNS

    rows = trials.assign(curve_id=trials["trial_id"].map(index), sweep=spec.name,
                         metric=spec.metric, mode=spec.mode)
    rows = rows[["curve_id", "sweep", "metric", "mode", "stop_reason", "epochs",
                 *BASELINE_COLUMNS, *KEEP_CONFIG]]
    return curves, rows


def build(only: str | None) -> None:
    specs = sorted((HERE / "specs").glob("*.yaml"))
    if only:
        specs = [s for s in specs if s.stem == only]
        if not specs:
            sys.exit(f"no spec named {only!r} in {HERE / 'specs'}")
    curves = pd.read_parquet(CURVES) if CURVES.exists() else pd.DataFrame()
    trials = pd.read_parquet(TRIALS) if TRIALS.exists() else pd.DataFrame()
    with tempfile.TemporaryDirectory() as storage:
        for spec_path in specs:
            new_curves, new_trials = run_one(spec_path, Path(storage))
            name = new_trials["sweep"].iloc[0]
            if len(trials):
                keep = trials["sweep"] != name
                curves = curves[curves["curve_id"].isin(trials.loc[keep, "curve_id"])]
                trials = trials[keep]
            curves = pd.concat([curves, new_curves], ignore_index=True)
            trials = pd.concat([trials, new_trials], ignore_index=True)
            print(f"{name}: {len(new_trials)} curves")
    curves.sort_values(["curve_id", "epoch"]).to_parquet(CURVES, index=False)
    trials.sort_values("curve_id").to_parquet(TRIALS, index=False)


def _series(values) -> str:
    return " ".join("nan" if not math.isfinite(v) else f"{v:.3g}" for v in values)


def show(only: str | None) -> None:
    curves, trials = pd.read_parquet(CURVES), pd.read_parquet(TRIALS)
    for _, t in trials.iterrows():
        if only and t["sweep"] != only:
            continue
        c = curves[curves["curve_id"] == t["curve_id"]].sort_values("epoch")
        print(f"== {t['curve_id']}  {t['config.optimizer.name']} lr={t['config.optimizer.lr']:g}"
              f" {t['config.schedule.name']} h={t['config.model.hidden']}x"
              f"{t['config.model.depth']} bs={t['config.batch_size']} "
              f"stop={t['stop_reason']} epochs={t['epochs']}/{t['config.epochs']} "
              f"metric={t['metric']}")
        print(f"   init loss {t['initial_val_loss']:.3g} acc {t['initial_val_acc']:.3g}"
              f" | chance loss {t['chance_val_loss']:.3g} acc {t['chance_val_acc']:.3g}")
        for column in ("lr", "train_loss", "val_loss", "val_acc"):
            print(f"   {column:10s} {_series(c[column])}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="one sweep (a spec's file name without .yaml)")
    parser.add_argument("--show", nargs="?", const="", metavar="SWEEP",
                        help="print the curves (of one sweep) instead of building")
    args = parser.parse_args()
    show(args.show or None) if args.show is not None else build(args.only)
