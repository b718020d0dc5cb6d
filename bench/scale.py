"""Scale: 32, 128 and 500 short trials, and what the results sink costs as sweeps grow.

1. Sweeps of N short trials (2 epochs of a small MLP on 400 synthetic rows: ~0.1 s of
   training each), 2 at a time on an embedded 2-CPU Ray, each size in a fresh process.
   Per trial: wall time over N, the overhead (wall - training / 2) over N, the driver
   process's CPU seconds over N, and the seconds the results sink spent writing.
2. The sink alone, without Ray (so the numbers are its own): T trials x E epochs reported
   one result at a time, each result a write, as parts of what changed (today) and
   rewriting both files at every write (the sink before, `max_parts=0`). Milliseconds of
   history writing per row reported and seconds of trials-table writing, as the sweep
   grows: flat per row when a write costs what changed.

    python -m bench.scale [--sizes 32 128 500] [--sink-trials 100 200 400] [--repeats 3]

The sweeps run in rounds (every size once per round); the table shows medians.

Goal (issue 11): per-trial overhead at 500 trials within 5% of 32.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from bench.record import bench_parser, median_run, write_record

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = 2


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_size(trials: int, storage: str) -> dict:
    """One sweep of `trials` short trials (run in a fresh process by `main`)."""
    import ray

    from orchestrator.engine.run import run_sweep
    from orchestrator.spec.model import spec_from_mapping

    spec = spec_from_mapping({
        "name": f"scale-{trials}", "num_samples": trials,
        "max_concurrent_trials": CONCURRENCY, "storage": storage,
        "train": {"dataset": {"name": "synthetic", "n_samples": 400, "n_features": 10},
                  "model": {"name": "mlp", "hidden": 32, "depth": 2}, "epochs": 2,
                  "batch_size": 64, "early_stopping": {"patience": None}},
        "search_space": {"optimizer.lr": {"loguniform": [0.01, 0.1]}},
        "scheduler": {"name": "fifo"}, "resources": {"cpu": 1},
    })
    ray.init(address="local", num_cpus=CONCURRENCY, include_dashboard=False,
             log_to_driver=False)
    cpu = _cpu_s()
    outcome = run_sweep(spec)
    cpu = _cpu_s() - cpu
    sweep = json.loads((outcome.results_dir / "sweep.json").read_text())
    work = float(outcome.history["epoch_s"].sum())
    wall = outcome.elapsed_s
    return {"trials": len(outcome.trials), "wall_s": wall, "work_s": work,
            "wall_per_trial_s": wall / trials,
            "overhead_per_trial_s": (wall - work / CONCURRENCY) / trials,
            "driver_cpu_per_trial_s": cpu / trials,
            "sink_write_s": sweep["results_write_s"],
            "history_write_s": sweep["history_write_s"]}


def sink_alone(trials: int, epochs: int, max_parts: int | None) -> dict:
    """Feed the results sink `trials` x `epochs` results, one write per result."""
    from orchestrator.results.sink import MAX_PARTS, ResultsSink

    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "sweep" / "results"
        sink = ResultsSink(results, "val_acc", "max", min_interval_s=0.0,
                           max_parts=MAX_PARTS if max_parts is None else max_parts)
        sink.setup()
        started = time.perf_counter()
        for index in range(trials):
            trial = SimpleNamespace(trial_id=f"t_{index:05d}", config={"train": {}},
                                    status="RUNNING", last_result={}, error_file=None)
            for epoch in range(1, epochs + 1):
                result = {"epoch": epoch, "train_loss": 1 / epoch, "val_loss": 1.1 / epoch,
                          "val_acc": 1 - 1 / (epoch + 1), "lr": 0.1, "epoch_s": 0.01,
                          "trial_time_s": 0.01 * epoch, "trial_id": trial.trial_id}
                trial.last_result = result
                sink.on_trial_result(0, [], trial, result)
            trial.status = "TERMINATED"
            sink.on_trial_complete(0, [], trial)
        sink.on_experiment_end([])
        elapsed = time.perf_counter() - started
    rows = trials * epochs
    return {"trials": trials, "epochs": epochs, "rows": rows,
            "mode": "rewrite every write" if max_parts == 0 else "parts",
            "total_s": elapsed, "history_write_s": sink.history_write_s,
            "history_ms_per_row": 1000 * sink.history_write_s / rows,
            "trials_write_s": sink.write_s - sink.history_write_s}


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 128, 500])
    parser.add_argument("--sink-trials", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--sink-epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds of sweeps")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a size, in-process
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_size(args.one, args.storage)))
        return
    runs: dict[int, list[dict]] = {size: [] for size in args.sizes}
    with tempfile.TemporaryDirectory() as storage:
        for round_ in range(args.repeats):  # rounds of every size: drift falls on all alike
            for size in args.sizes:  # a fresh process (and Ray) per sweep
                out = subprocess.run([sys.executable, "-m", "bench.scale", "--one", str(size),
                                      "--storage", f"{storage}/{round_}"], cwd=REPO,
                                     check=True, capture_output=True, text=True).stdout
                runs[size].append(json.loads(out.strip().splitlines()[-1]))
                print(f"round {round_ + 1}, {size} trials: {runs[size][-1]['wall_s']:.1f}s",
                      flush=True)
    sweeps = [median_run(runs[size]) for size in args.sizes]
    print(f"\nsweeps of short trials (2 epochs, ~0.05 s each), {CONCURRENCY} at a time; "
          f"median of {args.repeats} interleaved rounds")
    print(f"{'trials':>7}{'wall s':>9}{'s/trial':>9}{'overhead/trial':>16}"
          f"{'driver cpu/trial':>18}{'sink writes s':>15}{'of it history s':>17}")
    for row in sweeps:
        print(f"{row['trials']:7d}{row['wall_s']:9.1f}{row['wall_per_trial_s']:9.3f}"
              f"{row['overhead_per_trial_s']:16.3f}{row['driver_cpu_per_trial_s']:18.3f}"
              f"{row['sink_write_s']:15.2f}{row['history_write_s']:17.2f}")
    first, last = sweeps[0], sweeps[-1]
    growth = last["overhead_per_trial_s"] / first["overhead_per_trial_s"] - 1
    # what each further trial costs: start-up is paid once, so this shows what grows
    marginal = [(b["wall_s"] - a["wall_s"]) / (b["trials"] - a["trials"])
                for a, b in zip(sweeps, sweeps[1:])]
    for (a, b), cost in zip(zip(sweeps, sweeps[1:]), marginal):
        print(f"each trial from {a['trials']} to {b['trials']} added {cost:.3f} s of wall time")
    print(f"overhead per trial at {last['trials']} is {growth:+.1%} of {first['trials']}'s "
          f"(goal: at most 5% above: {'met' if growth <= 0.05 else 'missed'})")

    sink = [sink_alone(t, args.sink_epochs, mode) for t in args.sink_trials
            for mode in (None, 0)]
    print(f"\nthe results sink alone: one write per result, {args.sink_epochs} epochs a trial")
    print(f"{'':15}{'history ms per row':>26}{'trials table s':>26}")
    print(f"{'trials':>7}{'rows':>8}" + f"{'parts':>13}{'rewrite every write':>21}" * 2)
    for parts, whole in zip(sink[::2], sink[1::2]):
        print(f"{parts['trials']:7d}{parts['rows']:8d}{parts['history_ms_per_row']:13.3f}"
              f"{whole['history_ms_per_row']:21.3f}{parts['trials_write_s']:13.2f}"
              f"{whole['trials_write_s']:21.2f}")
    write_record("scale", args.out, args, sweeps=sweeps, runs=runs, sink=sink,
                 overhead_growth=growth, marginal_s_per_trial=marginal)


if __name__ == "__main__":
    main()
