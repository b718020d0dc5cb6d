"""`sweep export` of a large sweep against writing the same Arrow table with pyarrow.

Builds a synthetic, finished sweep folder of TRIALS x EPOCHS history rows (1,000 x 1,000
= 1M by default) with the sink's own writer, then times, in one run and alternating:

  pyarrow      pq.write_table of the history table already in memory (the floor)
  export       `sweep export DIR -o FILE --table history`, in-process: read the sweep,
               write the file (what a user waits for, less Python's start-up)
  export+cli   the same as a fresh process (`python -m orchestrator export ...`)
  frame path   the route through a data frame that export takes for other formats and
               for a sweep killed before it wrote its tables (read, pandas, declared
               Arrow schema, write)

Prints the median of --repeats runs of each and writes them with the machine and the
versions to bench/results/export-<time>.json.

    python -m bench.export [--trials 1000] [--epochs 1000] [--repeats 3]

Goal (issue 11): export at most 1.5x the pyarrow write.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from bench.record import bench_parser, write_record
from orchestrator.results import schema
from orchestrator.results.tables import write_history, write_trials

REPO = Path(__file__).resolve().parents[1]


def make_sweep(folder: Path, trials: int, epochs: int) -> None:
    """A finished sweep folder with `trials` x `epochs` history rows."""
    rng = np.random.default_rng(0)
    ids = np.array([f"bench_{i:05d}" for i in range(trials)])
    n = trials * epochs
    epoch = np.tile(np.arange(1, epochs + 1), trials)
    decay = np.exp(-epoch / 200.0)
    history = pd.DataFrame({
        schema.TRIAL_ID: np.repeat(ids, epochs), "epoch": epoch,
        "lr": np.repeat(10 ** rng.uniform(-4, -1, trials), epochs),
        "batch_size": np.repeat(rng.choice([32, 64, 128], trials), epochs),
        "train_loss": 2.3 * decay + rng.normal(0, 0.01, n) ** 2,
        "val_loss": 2.3 * decay + 0.05 + rng.normal(0, 0.01, n) ** 2,
        "val_acc": 1 - 0.9 * decay, "epoch_s": rng.uniform(0.01, 0.02, n),
        "time_total_s": np.tile(np.arange(1, epochs + 1) * 0.015, trials),
        "exploited_from": None,
    })
    table = pd.DataFrame({schema.TRIAL_ID: ids, schema.STATUS: "terminated",
                          schema.STOP_REASON: "completed", "epochs": epochs,
                          "config.optimizer.lr": history["lr"].to_numpy()[::epochs]})
    results = folder / schema.RESULTS_DIR
    results.mkdir(parents=True)
    write_history(history, results / schema.HISTORY_FILE)
    write_trials(table, results / schema.TRIALS_FILE, "val_acc")
    sweep = {"spec": {"name": folder.name, "metric": "val_acc", "mode": "max"},
             "status": "finished"}
    (results / schema.SWEEP_FILE).write_text(json.dumps(sweep))


def time_pyarrow(source: Path, out: Path) -> float:
    table = pq.read_table(source)  # in memory before the clock starts
    started = time.perf_counter()
    pq.write_table(table, out)
    return time.perf_counter() - started


def time_export(folder: Path, out: Path) -> float:
    from click.testing import CliRunner

    from orchestrator.cli import main

    started = time.perf_counter()
    result = CliRunner().invoke(main, ["export", str(folder), "-o", str(out),
                                       "--table", "history"])
    elapsed = time.perf_counter() - started
    if result.exit_code != 0:
        raise SystemExit(f"sweep export failed: {result.output}")
    return elapsed


def time_frame_path(folder: Path, out: Path) -> float:
    from orchestrator.results.export import declared_schema, export_table
    from orchestrator.results.load import load_sweep
    from orchestrator.results.storage import as_location

    started = time.perf_counter()
    tables = load_sweep(as_location(folder))
    export_table(tables.history, out, "parquet", declared_schema("history", tables.metric))
    return time.perf_counter() - started


def time_export_cli(folder: Path, out: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "orchestrator", "export", str(folder), "-o",
                    str(out), "--table", "history"], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "big-sweep"
        started = time.perf_counter()
        make_sweep(folder, args.trials, args.epochs)
        built_s = time.perf_counter() - started
        source = folder / schema.RESULTS_DIR / schema.HISTORY_FILE
        times: dict[str, list[float]] = {"pyarrow": [], "export": [], "export+cli": [],
                                         "frame path": []}
        for i in range(args.repeats):  # alternating, so drift hits all alike
            times["pyarrow"].append(time_pyarrow(source, Path(tmp) / f"pa{i}.parquet"))
            times["export"].append(time_export(folder, Path(tmp) / f"ex{i}.parquet"))
            times["export+cli"].append(time_export_cli(folder, Path(tmp) / f"cli{i}.parquet"))
            times["frame path"].append(time_frame_path(folder, Path(tmp) / f"fr{i}.parquet"))
        for name in ("ex0", "fr0"):  # both routes give the stored table, declared types
            exported = pq.read_table(Path(tmp) / f"{name}.parquet")
            assert exported.num_rows == args.trials * args.epochs
            assert exported.schema.equals(schema.history_schema()), exported.schema
            assert exported.equals(pq.read_table(source))
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["export"] / medians["pyarrow"]
    print(f"history of {args.trials} trials x {args.epochs} epochs = "
          f"{args.trials * args.epochs:,} rows (folder built in {built_s:.1f}s), "
          f"median of {args.repeats}")
    for name, value in medians.items():
        print(f"  {name:11s}{value:8.3f} s{value / medians['pyarrow']:8.2f}x")
    print(f"export is {ratio:.2f}x the pyarrow write (goal <= 1.5x: "
          f"{'met' if ratio <= 1.5 else 'missed'})")
    write_record("export", args.out, args, times_s=times, median_s=medians,
                 export_over_pyarrow=ratio)


if __name__ == "__main__":
    main()
