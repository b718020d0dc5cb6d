"""Spec -> Ray Tune Tuner; runs a sweep on an embedded Ray or a cluster it joins."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console

from orchestrator.errors import OrchestratorError
from orchestrator.results import schema
from orchestrator.results.provenance import now, write_sweep_json
from orchestrator.spec import SweepSpec

CHECKPOINTS_KEPT = 2
# PBT restores other trials' checkpoints: keep more so they are not deleted under it
CHECKPOINTS_KEPT_PBT = 4


@dataclass
class SweepOutcome:
    experiment_dir: Path
    trials: pd.DataFrame
    history: pd.DataFrame
    elapsed_s: float

    @property
    def results_dir(self) -> Path:
        return self.experiment_dir / schema.RESULTS_DIR

    @property
    def errored(self) -> int:
        return int((self.trials[schema.STATUS] == "error").sum()) if len(self.trials) else 0

    @property
    def unfinished(self) -> int:
        """Trials with no stop reason: the sweep was interrupted before they ended."""
        return int(self.trials[schema.STOP_REASON].isna().sum()) if len(self.trials) else 0


def experiment_dir(spec: SweepSpec) -> Path:
    return Path(spec.storage).expanduser().resolve() / spec.name


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast with one line: Ray itself retries an unreachable address for minutes."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise OrchestratorError(f"--address: {address!r} is not HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise OrchestratorError(
            f"--address: nothing answers at {address} ({exc.strerror or exc}); "
            "is the Ray head running?"
        ) from None


def ensure_ray(address: str | None = None) -> bool:
    """Start (or join, with `address`) Ray unless this process already has it.
    Returns True when this call started the connection (and should end it)."""
    import ray

    if ray.is_initialized():
        return False
    # Ray's token auth (its default for a new local instance, and what a cluster started
    # with RAY_AUTH_MODE=token expects); saying so also silences Ray's notice about it
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    if address:
        _check_reachable(address)
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    else:
        # address="local": never attach silently to another cluster recorded on this machine
        ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False)
    return True


def _trial_dirname(trial) -> str:
    return trial.trial_id


def build_tuner(spec: SweepSpec, callbacks: list):
    from ray import tune
    from ray.tune.search import Searcher

    from orchestrator.schedulers import create_scheduler
    from orchestrator.searchers import create_searcher
    from orchestrator.space import param_space
    from orchestrator.trainable.tune_entry import train_trial

    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    search_alg = create_searcher(spec)
    return tune.Tuner(
        tune.with_resources(train_trial, resources),
        param_space=param_space(spec),
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            num_samples=spec.num_samples,
            scheduler=create_scheduler(spec),
            search_alg=search_alg,
            # a Searcher is limited here; the basic generator limits itself (searchers.py)
            max_concurrent_trials=(
                spec.max_concurrent_trials if isinstance(search_alg, Searcher) else None
            ),
            time_budget_s=spec.time_budget_s,
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=str(Path(spec.storage).expanduser().resolve()),
            callbacks=callbacks,
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=(
                    CHECKPOINTS_KEPT_PBT if spec.scheduler.name == "pbt" else CHECKPOINTS_KEPT
                )
            ),
            failure_config=tune.FailureConfig(max_failures=spec.failure.max_failures),
            verbose=0,
        ),
    )


def run_sweep(
    spec: SweepSpec,
    *,
    address: str | None = None,
    overwrite: bool = False,
    console: Console | None = None,
    quiet: bool = False,
    callbacks: list | None = None,
) -> SweepOutcome:
    """Run `spec` to the end and return its result tables. `callbacks` are extra
    Ray Tune callbacks (they must pickle: Tune saves them with the experiment)."""
    console = console or Console(stderr=True)
    folder = experiment_dir(spec)
    if folder.exists() and not overwrite:
        raise OrchestratorError(
            f"name: a sweep {spec.name!r} already exists in {folder.parent}; "
            f"continue it with `sweep resume {folder}`, or pass --overwrite to start over"
        )
    # Our progress view replaces Tune's console output; per-epoch checkpoints make
    # Tune warn about frequent experiment snapshots, which is expected here.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

    from orchestrator.progress import ProgressView
    from orchestrator.results.sink import ResultsSink

    # Ray first: a cluster that cannot be joined leaves no folder behind
    started_here = ensure_ray(address)
    try:
        if folder.exists():
            shutil.rmtree(folder)
        results_dir = folder / schema.RESULTS_DIR
        resolved = spec.resolved()
        write_sweep_json(results_dir, resolved, started_at=now(), status="running")
        sink = ResultsSink(results_dir, spec.metric, spec.time_budget_s)
        callbacks = [sink, *(callbacks or [])]
        if not quiet:
            callbacks.append(ProgressView(console, spec.trial_count, spec.metric, spec.mode))
        started = time.monotonic()
        build_tuner(spec, callbacks).fit()
    finally:
        if started_here:
            import ray

            ray.shutdown()
    elapsed = time.monotonic() - started
    trials, history = sink.frames()
    outcome = SweepOutcome(folder, trials, history, elapsed)
    write_sweep_json(
        results_dir, resolved, ended_at=now(), elapsed_s=round(elapsed, 3),
        status="interrupted" if outcome.unfinished else "finished",
        trials=len(trials), errored=outcome.errored, budget_stopped=sink.budget_stopped,
    )
    return outcome
