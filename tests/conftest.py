"""Shared fixtures: ONE real Ray instance for every integration test of the session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ray_address():
    """A local Ray (2 CPUs) started by this test session and shut down at its end;
    in-process sweeps reuse it and CLI subprocesses join it with --address."""
    import ray

    context = ray.init(address="local", num_cpus=2, include_dashboard=False,
                       log_to_driver=False)
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


def tiny_spec(tmp_path: Path, name: str = "tiny", **changes) -> dict:
    """A sweep of a few trials of a few epochs on the synthetic data set."""
    spec = {
        "name": name,
        "num_samples": 2,
        "seed": 3,
        "train": {
            "dataset": {"name": "synthetic", "n_samples": 300, "n_features": 8},
            "model": {"name": "mlp", "hidden": 16, "depth": 1},
            "epochs": 3,
            "batch_size": 32,
            "optimizer": {"name": "sgd", "lr": 0.05},
            "schedule": {"name": "cosine", "warmup_epochs": 1},
            "batch_scaling": {"rule": "sqrt", "reference_batch_size": 32},
        },
        "search_space": {"optimizer.lr": {"loguniform": [0.01, 0.3]},
                         "batch_size": {"choice": [16, 32]}},
        "scheduler": {"name": "fifo"},
        "storage": str(tmp_path / "sweeps"),
    }
    for key, value in changes.items():
        spec[key] = value
    return spec


def write_spec(tmp_path: Path, spec: dict, filename: str = "spec.yaml") -> Path:
    path = tmp_path / filename
    path.write_text(yaml.safe_dump(spec))
    return path


def sweep_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real console script (the one `pip install -e .` put next to python)."""
    exe = Path(sys.executable).with_name("sweep")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env=dict(os.environ))
