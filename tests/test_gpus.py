"""Trials on GPUs, proven without one: Ray schedules the GPUs a node declares whether or
not CUDA is there. The plan and the progress line count trials per GPU and at once
(fast, for the plan); a head started with 2 declared GPUs packs `gpu: 0.5` trials two
to a GPU, recorded in gpu_ids with the times each trial ran, and fails them at once,
in one line, when they would train on GPUs torch cannot see (slow: real Ray)."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import torch

from orchestrator.cli.capacity import at_once, per_gpu
from orchestrator.results import schema
from tests.faults import ray_head
from tests.helpers import invoke, sweep_cli, tiny_spec, write_spec


def test_trials_per_gpu_and_at_once_by_the_nodes_resources():
    assert [per_gpu(g) for g in (0.5, 0.25, 0.3, 1, 2)] == [2, 4, 3, 1, 1]
    node = {"CPU": 4.0, "GPU": 2.0}
    assert at_once([node], cpu=1, gpu=0.5) == 4
    assert at_once([node], cpu=1, gpu=0.25) == 4  # the CPUs decide
    assert at_once([node], cpu=0.5, gpu=0.25) == 8
    assert at_once([node], cpu=1, gpu=1) == 2
    assert at_once([node], cpu=1, gpu=2) == 1
    assert at_once([node, {"CPU": 8.0}], cpu=1, gpu=0.5) == 4  # a CPU node runs none
    assert at_once([node, {"CPU": 8.0}], cpu=1, gpu=0) == 12
    assert at_once([{"CPU": 2.0, "GPU": 0.0}], cpu=1, gpu=0.5) == 0


def plan(tmp_path, *sets: str, env: dict | None = None, args: tuple = ()) -> str:
    path = write_spec(tmp_path, tiny_spec(tmp_path, num_samples=8))
    result = invoke("run", str(path), "--dry-run", *args,
                    *[a for s in sets for a in ("--set", s)], env=env)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_the_plan_shows_trials_per_gpu_and_how_many_run_at_once_here(tmp_path):
    cpus = os.cpu_count()
    shown = plan(tmp_path, "resources={cpu: 1, gpu: 0.5}", "train.device=cpu",
                 env={"CUDA_VISIBLE_DEVICES": "0,1"})
    assert "1 CPU, 0.5 GPU (2 trials per GPU)" in shown
    fit = min(cpus, 4, 8)
    assert (f"  concurrency {fit} at once on this machine's embedded Ray ({cpus} CPU"
            f"{'s' if cpus != 1 else ''}, 2 GPUs)") in shown
    # no GPU here: none can run, and the plan says why
    shown = plan(tmp_path, "resources={gpu: 0.25}", env={"CUDA_VISIBLE_DEVICES": ""})
    assert "(4 trials per GPU)" in shown
    assert "none at once on this machine's embedded Ray" in shown
    assert "each trial asks for 0.25 GPU; join a cluster that has it (--address)" in shown
    # a cluster is counted once joined; max_concurrent_trials caps it either way
    shown = plan(tmp_path, "max_concurrent_trials=3", args=("--address", "10.0.0.1:6379"))
    assert ("  concurrency 3 at once (max_concurrent_trials 3), as the cluster at "
            "10.0.0.1:6379 allows") in shown


def test_train_device_cuda_needs_a_gpu_per_trial(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path))
    result = invoke("validate", str(path), "--set", "train.device=cuda")
    assert result.exit_code == 2
    assert "train.device: is 'cuda', but resources.gpu is 0" in result.stderr
    if not torch.cuda.is_available():  # lr-find runs here, where there is no CUDA
        result = invoke("lr-find", str(path), "--set", "train.device=cuda",
                        "--set", "resources.gpu=1", "--out", str(tmp_path / "lr"))
        assert result.exit_code == 2
        assert result.stderr.startswith("error: train.device: is 'cuda', but torch ")


# -- on a head that declares 2 GPUs (no CUDA on this machine) ---------------------------

def gpu_spec(tmp_path, name: str, **train) -> dict:
    """8 short trials, each asking for a CPU and half a GPU."""
    spec = tiny_spec(tmp_path, name=name, num_samples=8, resources={"cpu": 1, "gpu": 0.5})
    spec["train"].update(dataset={"name": "synthetic", "n_samples": 3000, "n_features": 20},
                         epochs=3, early_stopping={"patience": None}, **train)
    spec["search_space"] = {"optimizer.lr": {"loguniform": [0.01, 0.3]}}
    return spec


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals (start, end) that hold one moment."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda e: (e[0], e[1]))  # an end before a start at the same time
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


@pytest.fixture(scope="module")
def two_gpu_head():
    with ray_head("--num-cpus=4", "--num-gpus=2") as head:
        yield head


@pytest.mark.slow
def test_half_gpu_trials_pack_two_to_a_declared_gpu(tmp_path, two_gpu_head):
    address, env = two_gpu_head
    path = write_spec(tmp_path, gpu_spec(tmp_path, "packed", device="cpu"))
    result = sweep_cli("run", str(path), "--address", address, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4 at once, 2 per GPU" in result.stderr  # the progress line
    trials = pd.read_parquet(tmp_path / "sweeps" / "packed" / schema.RESULTS_DIR
                             / schema.TRIALS_FILE)
    assert len(trials) == 8 and (trials[schema.STOP_REASON] == "completed").all()
    assert (trials["device"] == "cpu").all()
    ids = trials["gpu_ids"].map(json.loads)
    assert (ids.map(len) == 1).all()  # half a GPU: one GPU's id
    trials = trials.assign(gpu=ids.str[0])
    assert set(trials["gpu"]) == {"0", "1"}  # both GPUs used
    for gpu, group in trials.groupby("gpu"):
        ran = list(zip(group["started_at"], group["ended_at"]))
        assert all(start < end for start, end in ran)
        assert most_at_once(ran) <= 2, f"more than 2 trials on GPU {gpu} at once: {ran}"


@pytest.mark.slow
def test_trials_given_gpus_without_cuda_fail_at_once_with_one_line(tmp_path, two_gpu_head):
    address, env = two_gpu_head
    spec = gpu_spec(tmp_path, "no-cuda")
    spec["num_samples"] = 2
    path = write_spec(tmp_path, spec)
    result = sweep_cli("run", str(path), "--address", address, "--quiet", env=env)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "2 of 2 trials errored" in result.stderr
    results = tmp_path / "sweeps" / "no-cuda" / schema.RESULTS_DIR
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    assert (trials[schema.STATUS] == "error").all()
    for error in trials["error"]:
        line = next(x for x in error.splitlines() if "sees no CUDA" in x)
        assert "Ray gave it GPU " in line and ("install a CUDA build of torch on the GPU "
                                               "nodes, or set train.device: cpu") in line
    # failed before training: not a slow run on the CPU
    assert trials["epochs"].isna().all()
    history = pd.read_parquet(results / schema.HISTORY_FILE)
    assert history.empty
