"""Every spec in search_spaces/ validates; the CPU-sized ones also run (shrunk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.engine.run import run_sweep
from orchestrator.spec.model import load_spec
from tests.helpers import REPO, invoke

SPECS = sorted((REPO / "search_spaces").glob("*.yaml"))


def test_there_are_shipped_specs():
    names = {p.stem for p in SPECS}
    assert "digits_mlp_asha" in names and len(names) >= 5


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_spec_validates(path: Path):
    spec = load_spec(path)
    assert spec.name.replace("-", "_") == path.stem
    result = invoke("validate", str(path))  # and the command prints its plan
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"sweep {spec.name}: {spec.trial_count} trials (")


def runs_on_cpu(path: Path) -> bool:
    spec = load_spec(path)
    return spec.resources.gpu == 0 and spec.train.dataset.name in ("digits", "synthetic")


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in SPECS if runs_on_cpu(p)], ids=lambda p: p.stem)
def test_spec_runs_shrunk(path: Path, tmp_path, ray_address):
    spec = load_spec(path, [f"storage={tmp_path}", "train.epochs=3", "num_samples=2",
                            "max_concurrent_trials=2"])
    if spec.grid_size > 1:
        spec = load_spec(path, [f"storage={tmp_path}", "train.epochs=3", "num_samples=1"])
    outcome = run_sweep(spec)
    assert outcome.errored == 0
    assert len(outcome.trials) == spec.trial_count
    assert outcome.trials[f"best_{spec.metric}"].notna().all()
