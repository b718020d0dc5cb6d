"""Out of GPU memory for real: a sweep whose large batch does not fit halves it until it does.

On one NVIDIA GPU an embedded Ray runs two trials of an MLP at half a GPU each: batch
32768, which does not fit in the 2 GiB each trial's process may use (the model's factory,
`capped_mlp`, caps torch's caching allocator with set_per_process_memory_fraction, so
the check is the same on any GPU), and batch 4096, which does. CUDA raises
torch.cuda.OutOfMemoryError for the first; the trainer frees what the step held, halves
the batch and trains the epoch again. Checked: both trials complete on cuda; the large
one with oom_halvings >= 1, batch_size_used = 32768 / 2**oom_halvings and effective_lr =
lr * sqrt(used / 32768) (batch scaling none: sqrt from the batch asked for); the small one
never halved. About a minute, most of it Ray's start. Writes
bench/results/gpu_oom-<time>.json.

    python -m bench.gpu_oom           # on a machine with one NVIDIA GPU
    python -m bench.gpu_oom --cpu     # the script's logic without a GPU: a stand-in
                                      # model raises CUDA's error at 128 examples or more
"""

from __future__ import annotations

import math
import sys
import tempfile

from bench.gpu import nvidia_smi
from bench.record import bench_parser, write_record

LR = 0.05
# (large batch, small batch, examples, features, hidden width) on a GPU and on the CPU
SIZES = {"gpu": (32768, 4096, 45000, 256, 4096), "cpu": (512, 64, 1000, 16, 32)}


def capped_mlp(input_shape, num_outputs, hidden=4096, cap_gib=2.0, cpu_limit=0):
    """The benchmark's model (a user factory, built in the trial's process): an MLP of two
    hidden layers; on CUDA the process may use `cap_gib` of the GPU's memory. With
    `cpu_limit`, a stand-in on the CPU raises CUDA's out-of-memory error at that many
    examples per batch or more."""
    import torch
    from torch import nn

    net = nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], hidden), nn.ReLU(),
                        nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_outputs))
    if torch.cuda.is_available():  # device 0: the GPU Ray assigned this trial
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap_gib * 2**30 / total), 0)
    if not cpu_limit:
        return net

    class StandIn(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            if len(x) >= cpu_limit:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (stand-in)")
            return self.net(x)

    return StandIn()


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--cpu", action="store_true", help="no GPU: check the script itself")
    args = parser.parse_args()
    large, small, examples, features, hidden = SIZES["cpu" if args.cpu else "gpu"]

    from orchestrator.engine.run import run_sweep
    from orchestrator.spec.model import spec_from_mapping

    model = {"factory": "bench.gpu_oom:capped_mlp", "hidden": hidden,
             "cpu_limit": 128 if args.cpu else 0}
    with tempfile.TemporaryDirectory() as storage:
        outcome = run_sweep(spec_from_mapping({
            "name": "gpu-oom", "storage": storage, "seed": 0,
            "train": {"dataset": {"name": "synthetic", "n_samples": examples,
                                  "n_features": features, "n_classes": 10},
                      "model": model, "epochs": 2, "optimizer": {"name": "sgd", "lr": LR},
                      "early_stopping": {"patience": None}},
            "search_space": {"batch_size": {"grid": [large, small]}},
            "scheduler": {"name": "fifo"},
            "resources": {"cpu": 1, "gpu": 0 if args.cpu else 0.5},
        }))
    trials = outcome.trials.set_index("config.batch_size")
    print(trials[["status", "device", "batch_size_used", "oom_halvings", "effective_lr",
                  "best_val_acc", "error"]].to_string())
    rows = trials[["status", "device", "batch_size_used", "oom_halvings",
                   "effective_lr"]].reset_index().to_dict("records")
    problems = []
    if not (trials["status"] == "terminated").all():
        problems.append("a trial did not complete")
    if not args.cpu and set(trials["device"]) != {"cuda"}:
        problems.append(f"devices {sorted(set(trials['device'].dropna()))}, not cuda")
    big, fits = trials.loc[large], trials.loc[small]
    halvings = int(big["oom_halvings"]) if big["oom_halvings"] == big["oom_halvings"] else 0
    if halvings < 1 or big["batch_size_used"] != large >> halvings:
        problems.append(f"batch {large}: {halvings} halvings, ran at {big['batch_size_used']}")
    elif not math.isclose(big["effective_lr"], LR * math.sqrt(big["batch_size_used"] / large)):
        problems.append(f"batch {large}: effective_lr {big['effective_lr']} not sqrt-scaled")
    if fits["oom_halvings"] != 0:
        problems.append(f"batch {small} was halved")
    gpu = nvidia_smi("name")
    print(f"batch {large} ran out of memory {halvings} times and ran at "
          f"{big['batch_size_used']}, rate x{big['effective_lr'] / LR:.3f}; batch {small} "
          f"fit; GPU {gpu or 'none'}: " + ("; ".join(problems) or "as expected"))
    write_record("gpu_oom", args.out, args, gpu=gpu, rows=rows, problems=problems)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
