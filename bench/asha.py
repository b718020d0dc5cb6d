"""ASHA against a full search: the same sampled configurations under `asha` and `fifo`.

Both sweeps sample the same configurations (same searcher seed) from the quickstart's
search space (digits MLP) with early stopping off, so the only difference is ASHA's early
termination. Prints epochs and wall time spent and the best val_acc of each, and writes
the numbers, the machine and the versions to bench/results/asha-<time>.json.

    python -m bench.asha [--samples 32] [--epochs 20]

Goal (issue 11): ASHA spends at most 35% of the compute and its best is within 1 point
of the full search's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.record import bench_parser, write_record

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "search_spaces" / "digits_mlp_asha.yaml"


def run(scheduler: str, samples: int, epochs: int, storage: str) -> dict:
    from orchestrator.engine.run import run_sweep
    from orchestrator.spec.model import load_spec

    scheduler_set = ("scheduler={name: fifo}" if scheduler == "fifo" else
                     "scheduler={name: asha, grace_period: 2, reduction_factor: 3}")
    spec = load_spec(QUICKSTART, [f"name={scheduler}", f"storage={storage}",
                                  f"num_samples={samples}", f"train.epochs={epochs}",
                                  "train.early_stopping.patience=null", scheduler_set])
    outcome = run_sweep(spec)
    trials = outcome.trials
    return {
        "scheduler": scheduler, "trials": len(trials), "epochs_run": len(outcome.history),
        "epochs_full": samples * epochs, "wall_s": round(outcome.elapsed_s, 2),
        "training_s": round(float(outcome.history["epoch_s"].sum()), 2),
        "best_val_acc": float(trials["best_val_acc"].max()),
        "configs": sorted(round(v, 12) for v in trials["config.optimizer.lr"]),
    }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as storage:
        rows = [run(s, args.samples, args.epochs, storage) for s in ("fifo", "asha")]
    fifo, asha = rows
    assert fifo["configs"] == asha["configs"], "the two sweeps sampled different configs"
    share = asha["epochs_run"] / fifo["epochs_run"]
    gap = fifo["best_val_acc"] - asha["best_val_acc"]
    print(f"{args.samples} sampled configurations x {args.epochs} epochs, digits MLP, "
          "early stopping off")
    print(f"{'':6}{'epochs':>8}{'wall s':>9}{'train s':>9}{'best val_acc':>14}")
    for row in rows:
        print(f"{row['scheduler']:6}{row['epochs_run']:8d}{row['wall_s']:9.1f}"
              f"{row['training_s']:9.1f}{row['best_val_acc']:14.4f}")
    print(f"ASHA ran {share:.0%} of the full search's epochs (goal <= 35%: "
          f"{'met' if share <= 0.35 else 'missed'}); its best is {gap * 100:+.2f} points "
          f"below (goal <= 1: {'met' if gap <= 0.01 else 'missed'})")
    write_record("asha", args.out, args,
                 rows=[{k: v for k, v in r.items() if k != "configs"} for r in rows],
                 asha_share_of_epochs=share, best_gap_points=gap * 100)


if __name__ == "__main__":
    main()
