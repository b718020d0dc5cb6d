"""GPU packing: the same small sweep with 1, 2, 4 and 8 trials sharing one GPU.

Each packing runs the same TRIALS trials (a CNN on digits, data on the device, bf16
where the GPU supports it) with `resources: {gpu: 1/k}` and k trials at a time, in a
fresh process with an embedded Ray. For each: wall time, trials per hour, and the GPU's
utilisation sampled from nvidia-smi every 0.5 s while the sweep runs. Sized to finish
within 5 minutes on one GPU. Writes bench/results/gpu-<time>.json.

    python -m bench.gpu                       # on a machine with one NVIDIA GPU
    python -m bench.gpu --cpu --trials 2      # the script's logic without a GPU

Goal (issue 11): at least 3x the trials per hour at 4 per GPU than at 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.record import bench_parser, write_record

REPO = Path(__file__).resolve().parents[1]


def nvidia_smi(field: str) -> str | None:
    """The first GPU's `field` (nvidia-smi --query-gpu, no units); None without one."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    out = subprocess.run([smi, f"--query-gpu={field}", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True).stdout.strip()
    return out.splitlines()[0].strip() if out else None


class GpuSampler(threading.Thread):
    """Samples `nvidia-smi`'s utilisation.gpu (percent) every `every_s` until stopped."""

    def __init__(self, every_s: float = 0.5):
        super().__init__(daemon=True)
        self.every_s, self.samples, self.done = every_s, [], threading.Event()

    def run(self) -> None:
        while shutil.which("nvidia-smi") and not self.done.wait(self.every_s):
            util = nvidia_smi("utilization.gpu")
            if util:
                self.samples.append(float(util))


def run_packing(per_gpu: int, trials: int, epochs: int, cpu: bool, storage: str) -> dict:
    import ray
    import torch

    from orchestrator.engine.run import run_sweep
    from orchestrator.spec.model import spec_from_mapping

    bf16 = not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    cpus = os.cpu_count() or 2
    spec = spec_from_mapping({
        "name": f"gpu-{per_gpu}", "num_samples": trials, "max_concurrent_trials": per_gpu,
        "storage": storage, "seed": 0,
        "train": {"dataset": {"name": "digits"},
                  "model": {"name": "cnn", "channels": 32, "depth": 2},
                  "epochs": epochs, "batch_size": 64, "precision": "bf16" if bf16 else "fp32",
                  "early_stopping": {"patience": None}},
        "search_space": {"optimizer.lr": {"loguniform": [0.01, 0.1]}},
        "scheduler": {"name": "fifo"},
        "resources": {"cpu": max(1, cpus // per_gpu) if not cpu else 1,
                      "gpu": 0 if cpu else 1 / per_gpu},
    })
    ray.init(address="local", num_cpus=cpus if not cpu else per_gpu,
             num_gpus=0 if cpu else 1, include_dashboard=False, log_to_driver=False)
    sampler = GpuSampler()
    sampler.start()
    outcome = run_sweep(spec)
    sampler.done.set()
    wall = outcome.elapsed_s
    trials_done = int(outcome.trials["stop_reason"].notna().sum())
    return {"per_gpu": per_gpu, "trials": trials_done, "wall_s": wall,
            "trials_per_hour": 3600 * trials_done / wall,
            "gpu_util_mean": statistics.mean(sampler.samples) if sampler.samples else None,
            "devices": sorted(set(outcome.trials["device"].dropna())),
            "precision": "bf16" if bf16 else "fp32",
            "best_val_acc": float(outcome.trials["best_val_acc"].max())}


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--packings", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--cpu", action="store_true", help="no GPU: check the script itself")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as storage:
            row = run_packing(args.one, args.trials, args.epochs, args.cpu, storage)
        print("RESULT " + json.dumps(row), flush=True)
        return
    rows = []
    for per_gpu in args.packings:  # a fresh process (and Ray) per packing
        out = subprocess.run([sys.executable, "-m", "bench.gpu", "--one", str(per_gpu),
                              "--trials", str(args.trials), "--epochs", str(args.epochs),
                              *(["--cpu"] if args.cpu else [])], cwd=REPO,
                             capture_output=True, text=True)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"{per_gpu} per GPU failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(line.removeprefix("RESULT ")))
        print(f"{per_gpu} per GPU: {rows[-1]['wall_s']:.1f}s", flush=True)
    gpu = nvidia_smi("name")  # the record says where it ran
    print(f"\n{args.trials} trials x {args.epochs} epochs, CNN on digits, "
          f"{rows[0]['precision']}, devices {rows[0]['devices']}, GPU {gpu or 'none'}")
    print(f"{'per GPU':>8}{'wall s':>9}{'trials/hour':>13}{'GPU util %':>12}{'best':>8}")
    for row in rows:
        util = "-" if row["gpu_util_mean"] is None else f"{row['gpu_util_mean']:.0f}"
        print(f"{row['per_gpu']:8d}{row['wall_s']:9.1f}{row['trials_per_hour']:13.0f}"
              f"{util:>12}{row['best_val_acc']:8.3f}")
    by = {row["per_gpu"]: row["trials_per_hour"] for row in rows}
    if 1 in by and 4 in by:
        gain = by[4] / by[1]
        print(f"4 per GPU: {gain:.2f}x the trials per hour of 1 (goal >= 3: "
              f"{'met' if gain >= 3 else 'missed'})")
    write_record("gpu", args.out, args, gpu=gpu, rows=rows)


if __name__ == "__main__":
    main()
