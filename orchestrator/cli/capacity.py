"""How many trials run at once: the spec's resources per trial against the CPUs and GPUs
of a Ray cluster's nodes, for the printed plan and the progress line.

Ray places a trial on one node, and a fractional GPU (`resources: {gpu: 0.25}`) on one
GPU of it: floor(1 / gpu) trials share a GPU. A plan printed before Ray starts counts
this machine as an embedded Ray would (its CPUs; its GPUs, or CUDA_VISIBLE_DEVICES),
without importing Ray or torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

# Ray keeps resource amounts to 4 decimal places: 0.3 GPU is 3 per GPU, not 3.33
_EPS = 1e-4


def per_gpu(gpu: float) -> int:
    """Trials that share one GPU when each asks for `gpu` (a share under 1), else 1."""
    return max(1, math.floor(1 / gpu + _EPS)) if 0 < gpu < 1 else 1


def at_once(nodes: Iterable[Mapping[str, float]], cpu: float, gpu: float) -> int:
    """Trials of `cpu` CPUs and `gpu` GPUs each that fit on `nodes` at the same time
    (each node: its total {"CPU": n, "GPU": m}, as Ray reports them)."""
    total = 0
    for node in nodes:
        fit = math.floor(node.get("CPU", 0) / cpu + _EPS)
        if gpu:
            gpus = node.get("GPU", 0)
            by_gpu = (math.floor(gpus + _EPS) * per_gpu(gpu) if gpu < 1
                      else math.floor(gpus / gpu + _EPS))
            fit = min(fit, by_gpu)
        total += fit
    return total


def this_machine() -> dict[str, float]:
    """This machine's CPUs and GPUs as an embedded Ray counts them: the CPUs Python
    sees; the GPUs CUDA_VISIBLE_DEVICES names, else those NVIDIA's driver lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        gpus = len([d for d in visible.split(",") if d.strip()])
    else:
        driver = Path("/proc/driver/nvidia/gpus")
        gpus = len(list(driver.iterdir())) if driver.is_dir() else 0
    return {"CPU": float(os.cpu_count() or 1), "GPU": float(gpus)}


def cluster_nodes() -> list[dict[str, float]]:
    """The resources of the alive nodes of the Ray this process is connected to."""
    import ray

    return [dict(node.get("Resources", {})) for node in ray.nodes() if node.get("Alive")]


def _amount(value: float, unit: str) -> str:
    return f"{value:g} {unit}" + ("s" if value != 1 else "")


def packing(gpu: float) -> str:
    """How trials share GPUs: '(2 trials per GPU)', '(2 GPUs per trial)', ''."""
    if not gpu:
        return ""
    if gpu < 1:
        return f" ({per_gpu(gpu)} trials per GPU)"
    return f" ({gpu:g} GPUs per trial)" if gpu > 1 else " (a GPU per trial)"


def concurrency_line(spec, nodes: list[Mapping[str, float]] | None, where: str) -> str:
    """How many of `spec`'s trials run at once on `nodes` (`where` names them); None
    nodes: a cluster not joined yet, counted when the sweep runs."""
    limit = spec.max_concurrent_trials
    capped = f" (max_concurrent_trials {limit})" if limit else ""
    if nodes is None:
        return (f"{limit} at once{capped}, " if limit else "") + \
            f"as {where} allows (the progress line counts it once the sweep runs)"
    cpus = sum(n.get("CPU", 0) for n in nodes)
    gpus = sum(n.get("GPU", 0) for n in nodes)
    fit = at_once(nodes, spec.resources.cpu, spec.resources.gpu)
    have = f"{_amount(cpus, 'CPU')}, {_amount(gpus, 'GPU')}"
    if fit == 0:
        short = "GPU" if spec.resources.gpu and at_once(nodes, spec.resources.cpu, 0) else "CPU"
        need = spec.resources.gpu if short == "GPU" else spec.resources.cpu
        return (f"none at once on {where} ({have}): each trial asks for {need:g} {short}; "
                "join a cluster that has it (--address) or ask for less (resources)")
    runs = min(fit, limit or fit, spec.trial_count)
    return f"{runs} at once on {where} ({have}){capped}"
