"""`sweep lr-find`: the LR range test (trainable/lr_find.py) on a spec's fixed training
settings, run in this process (no Ray), its plot and its curve as files, and a summary.
It trains a model, so it sits with the engine, which drives training from a spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.errors import OrchestratorError
from orchestrator.spec.model import SweepSpec

MIN_STEPS = 20


def find_learning_rate(spec: SweepSpec, min_lr: float, max_lr: float, steps: int,
                       out_dir: str | Path) -> dict[str, Any]:
    """Run the range test, write lr_find.png and lr_find.parquet into `out_dir`, and
    return the summary (`suggested_lr` and `range` are `optimizer.lr` values, at the
    reference batch size)."""
    if getattr(spec.train, "function", None):
        raise OrchestratorError("train.function: lr-find trains the shared trainable; a "
                                "sweep of your own loop has no optimiser it can drive")
    if min_lr <= 0 or min_lr >= max_lr:
        raise OrchestratorError(f"--min-lr, --max-lr: are {min_lr:g} and {max_lr:g}, but must "
                                "be 0 < min-lr < max-lr")
    if steps < MIN_STEPS:
        raise OrchestratorError(f"--steps: is {steps}, but must be >= {MIN_STEPS}")
    import pandas as pd
    import torch

    from orchestrator.analysis.plots import lr_find_plot
    from orchestrator.results.atomic import write_atomic
    from orchestrator.spec.settings import TrialConfig
    from orchestrator.trainable.lr_find import lr_range_test

    config = TrialConfig(train=spec.train, objective={"metric": spec.metric, "mode": spec.mode},
                         seed=spec.seed, code={"folders": spec.code})
    if spec.train.device == "cuda" and not torch.cuda.is_available():
        raise OrchestratorError(f"train.device: is 'cuda', but torch {torch.__version__} "
                                "sees no CUDA on this machine")
    # train.device as the trials take it: the GPU when there is one, unless `cpu`
    device = "cuda" if torch.cuda.is_available() and spec.train.device != "cpu" else "cpu"
    result = lr_range_test(config, min_lr, max_lr, steps, device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curve = pd.DataFrame({"step": range(1, len(result.lrs) + 1), "lr": result.lrs,
                          "loss": result.raw_losses, "smoothed_loss": result.losses})
    write_atomic(out / "lr_find.parquet", lambda tmp: curve.to_parquet(tmp, index=False))
    lr_find_plot(result.lrs, result.losses, result.suggested_lr, result.low, result.high, out)
    return {
        "suggested_lr": result.reference_lr,
        "range": [result.reference_low, result.reference_high],
        "effective_lr": result.suggested_lr, "effective_range": [result.low, result.high],
        "batch_size": spec.train.batch_size,
        "batch_scaling": spec.train.batch_scaling.model_dump(),
        "steps_run": len(result.lrs), "stopped_early": result.stopped_early,
        "search_space": result.search_line(), "device": device,
        "files": [str(out / "lr_find.png"), str(out / "lr_find.parquet")],
    }
