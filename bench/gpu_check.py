"""GPU check (run on a machine with one GPU): a tiny sweep with resources
{gpu: 0.25} and precision bf16, checking that four trials share the GPU at once
and that every trial trained on CUDA.

    python -m bench.gpu_check            # on the GPU machine
    python -m bench.gpu_check --cpu      # the same script's logic without a GPU
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from ray.tune import Callback


class PeakRunning(Callback):
    """A Tune callback: the most trials Ray Tune had RUNNING at once."""

    def __init__(self):
        self.peak = 0

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        self.peak = max(self.peak, sum(1 for t in trials if str(t.status) == "RUNNING"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="no GPU: check the script itself")
    args = parser.parse_args()

    import ray
    import torch

    from orchestrator.engine.run import run_sweep
    from orchestrator.spec.model import spec_from_mapping

    gpu = 0 if args.cpu else 0.25
    print(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}",
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
    storage = tempfile.mkdtemp()
    spec = spec_from_mapping({
        "name": "gpu-check", "num_samples": 8, "seed": 0,
        "train": {
            "dataset": {"name": "synthetic", "n_samples": 40000, "n_features": 64,
                        "n_classes": 8},
            "model": {"name": "mlp", "hidden": 1024, "depth": 3, "norm": "layer"},
            "epochs": 12, "batch_size": 256, "precision": "bf16",
            "optimizer": {"name": "adamw", "lr": 0.001},
            "schedule": {"name": "cosine", "warmup_epochs": 1},
            "early_stopping": {"patience": None},
        },
        "search_space": {"optimizer.lr": {"loguniform": [1e-4, 3e-3]}},
        "scheduler": {"name": "fifo"},
        "resources": {"cpu": 1, "gpu": gpu},
        "storage": storage,
    })
    ray.init(address="local", num_cpus=8, num_gpus=0 if args.cpu else 1,
             include_dashboard=False, log_to_driver=False)
    peak = PeakRunning()
    outcome = run_sweep(spec, callbacks=[peak])
    ray.shutdown()

    trials = outcome.trials
    columns = ["trial_id", "device", "status", "stop_reason", "epochs", "best_val_acc",
               "wall_s", "config.precision"]
    print(trials[columns].to_string(index=False))
    overlap = peak.peak
    expected_device = "cpu" if args.cpu else "cuda"
    checks = {
        "no trial errored": outcome.errored == 0,
        f"every trial trained on {expected_device}": (trials["device"] == expected_device).all(),
        "every trial completed": (trials["stop_reason"] == "completed").all(),
        "losses finite in bf16": trials["train_loss"].notna().all(),
        f"4 trials ran at once (saw {overlap})": args.cpu or overlap == 4,
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print(f"sweep wall {outcome.elapsed_s:.1f}s")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
