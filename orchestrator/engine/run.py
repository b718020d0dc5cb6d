"""Spec -> Ray Tune Tuner; runs a sweep, or resumes one, on an embedded Ray or a cluster.

`run_sweep` and `resume_sweep` share one driver (`_drive`): a Ray session, SIGTERM
handled like Ctrl-C, the results sink and progress view, sweep.json's record of each
segment, and the outcome. They differ only in how the Tuner is made: built from the
spec, or restored from Tune's own experiment state.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from rich.console import Console

from orchestrator.errors import OrchestratorError
from orchestrator.interrupts import sigterm_as_sigint
from orchestrator.ray_session import ray_session
from orchestrator.registry import BuildContext
from orchestrator.results import schema
from orchestrator.results.provenance import begin_segment, end_segment
from orchestrator.spec import SweepSpec, spec_from_mapping
from orchestrator.storage import Location, open_storage
from orchestrator.sweep_folder import read_sweep_json, read_tables, sweep_json_path

CHECKPOINTS_KEPT = 2
# PBT restores other trials' checkpoints: keep more so they are not deleted under it
CHECKPOINTS_KEPT_PBT = 4

Errored = Literal["resume", "restart"] | None


@dataclass
class SweepOutcome:
    location: Location
    trials: pd.DataFrame
    history: pd.DataFrame
    elapsed_s: float
    signal: str | None = None  # the stop signal the driver received ('SIGTERM'), if any

    @property
    def experiment_dir(self) -> Path | Location:
        """The sweep's folder: a local Path, or a Location on an object store."""
        return self.location.local or self.location

    @property
    def results_dir(self) -> Path | Location:
        return self.experiment_dir / schema.RESULTS_DIR

    @property
    def errored(self) -> int:
        return int((self.trials[schema.STATUS] == "error").sum()) if len(self.trials) else 0

    @property
    def unfinished(self) -> int:
        """Trials with no stop reason: the sweep was interrupted before they ended."""
        return int(self.trials[schema.STOP_REASON].isna().sum()) if len(self.trials) else 0


def experiment_dir(spec: SweepSpec) -> Location:
    return open_storage(spec.storage) / spec.name


def build_context(spec: SweepSpec) -> BuildContext:
    """What the scheduler and searcher factories need to know of the sweep."""
    from orchestrator.space import pbt_mutations

    return BuildContext(
        seed=spec.seed, max_epochs=spec.max_epochs,
        max_concurrent_trials=spec.max_concurrent_trials,
        mutations=pbt_mutations(spec) if spec.scheduler.name == "pbt" else {},
    )


def _trial_dirname(trial) -> str:
    return trial.trial_id


def _trainable(spec: SweepSpec):
    from ray import tune

    from orchestrator.trainable.tune_entry import train_trial

    return tune.with_resources(train_trial, {"cpu": spec.resources.cpu,
                                             "gpu": spec.resources.gpu})


def build_tuner(spec: SweepSpec, callbacks: list):
    from ray import tune
    from ray.tune.search import Searcher

    from orchestrator.schedulers import create_scheduler
    from orchestrator.searchers import create_searcher
    from orchestrator.space import param_space

    context = build_context(spec)
    search_alg = create_searcher(spec.searcher, context)
    storage_path, storage_filesystem = open_storage(spec.storage).tune_storage()
    return tune.Tuner(
        _trainable(spec),
        param_space=param_space(spec),
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            num_samples=spec.num_samples,
            scheduler=create_scheduler(spec.scheduler, context),
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
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
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


def _drive(spec: SweepSpec, folder: Location, make_tuner: Callable[[list], Any], *, command: str,
           address: str | None, console: Console | None, quiet: bool,
           callbacks: list | None, fresh: bool = False, ended: frozenset[str] = frozenset(),
           drop_errored: bool = False, before: pd.DataFrame | None = None) -> SweepOutcome:
    """Start or join Ray, drive the Tuner `make_tuner(callbacks)` makes to its end (or to
    an interrupt) and record the segment in sweep.json."""
    console = console or Console(stderr=True)
    # Our progress view replaces Tune's console output; per-epoch checkpoints make
    # Tune warn about frequent experiment snapshots, which is expected here.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Of Tune's loggers only the JSON one (params.json, result.json: the tables are rebuilt
    # from them); its CSV and TensorBoard ones repeat the tables at every result, and the
    # latter imports torch into the driver and fsyncs per result (bench.scale). Setting
    # this to 0 brings them back.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

    from ray.tune.logger import JsonLoggerCallback

    from orchestrator.progress import ProgressView
    from orchestrator.results.sink import ResultsSink

    resolved = spec.resolved()
    results_dir = folder / schema.RESULTS_DIR
    # Ray first: a cluster that cannot be joined leaves no folder behind
    with ray_session(address), sigterm_as_sigint() as received:
        if address:
            _warn_if_storage_is_not_shared(spec, console)
        if fresh:
            folder.delete()
        begin_segment(results_dir, resolved, command)
        sink = ResultsSink(results_dir, spec.metric, spec.mode, spec.time_budget_s,
                           ended=ended, drop_errored=drop_errored)
        all_callbacks = [JsonLoggerCallback(), sink, *(callbacks or [])]
        if not quiet:
            all_callbacks.append(ProgressView(console, spec.trial_count, spec.metric,
                                              spec.mode, ended=ended))
        started = time.monotonic()
        make_tuner(all_callbacks).fit()
        elapsed = time.monotonic() - started
        sink.write_whole()  # Tune may end without calling on_experiment_end
    trials, history = sink.frames()
    outcome = SweepOutcome(folder, trials, history, elapsed, received.name)
    write_end = dict(status="interrupted" if outcome.unfinished else "finished",
                     elapsed_s=elapsed, trials_ended=_ended_in_segment(before, trials),
                     trials=len(trials), errored=outcome.errored,
                     budget_stopped=sink.budget_stopped,
                     results_write_s=round(sink.write_s, 3),
                     history_write_s=round(sink.history_write_s, 3))
    if sink.dropped:
        write_end["restarted_errored"] = sink.dropped
    end_segment(results_dir, resolved, **write_end)
    return outcome


def _warn_if_storage_is_not_shared(spec: SweepSpec, console: Console) -> None:
    import ray

    from orchestrator.cluster import storage_warning

    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    warning = storage_warning(spec.storage, nodes)
    if warning:
        console.print(warning, markup=False)


def _ended_in_segment(before: pd.DataFrame | None, after: pd.DataFrame) -> int:
    """Trials whose end (status and stop reason) was first recorded in this segment."""
    def ends(frame: pd.DataFrame | None) -> dict:
        if frame is None or not len(frame):
            return {}
        done = frame[frame[schema.STOP_REASON].notna()]
        return dict(zip(done[schema.TRIAL_ID], zip(done[schema.STATUS], done[schema.STOP_REASON])))
    earlier = ends(before)
    return sum(1 for trial_id, end in ends(after).items() if earlier.get(trial_id) != end)


def resume_command(folder: Location, spec: SweepSpec) -> str:
    """The command that continues this sweep (an object store by name and storage URI,
    whose query the folder's own name would lose)."""
    if folder.local:
        return f"sweep resume {folder.local}"
    return f"sweep resume {spec.name} --storage '{spec.storage}'"


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
    folder = experiment_dir(spec)
    if folder.exists() and not overwrite:
        raise OrchestratorError(
            f"name: a sweep {spec.name!r} already exists in {folder.parent}; "
            f"continue it with `{resume_command(folder, spec)}`, or pass --overwrite to "
            "start over"
        )
    return _drive(spec, folder, lambda cbs: build_tuner(spec, cbs), command="run",
                  address=address, console=console, quiet=quiet, callbacks=callbacks,
                  fresh=True)


# -- resume ------------------------------------------------------------------

@dataclass(frozen=True)
class ResumePlan:
    """What `sweep resume` found in a sweep folder, read before Ray starts."""

    folder: Location
    spec: SweepSpec
    status: str | None
    trials: pd.DataFrame | None
    history: pd.DataFrame | None
    errored: int

    @property
    def ended(self) -> frozenset[str]:
        """Trials the tables record as ended normally: their rows are final."""
        if self.trials is None or not len(self.trials):
            return frozenset()
        done = self.trials[(self.trials[schema.STATUS] == "terminated")
                           & self.trials[schema.STOP_REASON].notna()]
        return frozenset(done[schema.TRIAL_ID])

    def finished(self, errored: Errored) -> bool:
        """Nothing to do: every trial ended, and errored ones are not to be run again."""
        return self.status == "finished" and not (errored and self.errored)


def plan_resume(folder: Location) -> ResumePlan:
    """Check a sweep folder for `resume` without starting Ray: its sweep.json (the spec
    comes from there), its tables and Tune's experiment state."""
    data = read_sweep_json(folder)
    spec = spec_from_mapping(data["spec"], str(sweep_json_path(folder)))
    trials, history = read_tables(folder)
    errored = int((trials[schema.STATUS] == "error").sum()) if trials is not None else 0
    plan = ResumePlan(folder, spec, data.get("status"), trials, history, errored)
    if plan.status != "finished" and not (
        (folder / "tuner.pkl").is_file()
        and any(c.name.startswith("experiment_state-") for c in folder.children())
    ):
        raise OrchestratorError(
            f"{folder}: has no Ray Tune experiment state (tuner.pkl and "
            "experiment_state-*.json), so it cannot be resumed; the driver died before Tune "
            f"saved any: start it again with `sweep run SPEC --overwrite`"
        )
    return plan


class _DeletedCheckpointNoise(logging.Filter):
    """Tune's restored snapshot can list checkpoints Tune itself deleted later; when it
    tries to delete them again it logs an error with a traceback, though nothing is
    lost (the trainable restores from the newest checkpoint on disk). Drop that one."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, FileNotFoundError) and "checkpoint_" in str(exc)
                    and "Error handling checkpoint" in record.getMessage())


def _restore_tuner(plan: ResumePlan, callbacks: list, errored: Errored):
    from ray import tune

    from orchestrator.schedulers import replay_history
    from orchestrator.stoppers import StopEnded

    logging.getLogger("ray.tune.execution.tune_controller").addFilter(_DeletedCheckpointNoise())
    path = str(plan.folder.local) if plan.folder.local else plan.folder.path
    tuner = tune.Tuner.restore(
        path, trainable=_trainable(plan.spec), resume_unfinished=True,
        resume_errored=errored == "resume", restart_errored=errored == "restart",
        storage_filesystem=None if plan.folder.local else plan.folder.fs,
    )
    # Tune restores the RunConfig pickled by the first run, callbacks included. This
    # driver's own (a sink that reloads the tables, a progress view on this console)
    # replace them, and trials the tables already record as ended are stopped at their
    # first report: Tune's last snapshot can predate their end.
    run_config = tuner._local_tuner.get_run_config()
    run_config.callbacks = callbacks
    if plan.ended:
        run_config.stop = StopEnded(plan.ended)
    replay_history(tuner._local_tuner._tune_config.scheduler, _metric_rows(plan),
                   plan.spec.mode)
    return tuner


def _metric_rows(plan: ResumePlan) -> list[tuple[str, int, float]]:
    """(trial_id, epoch, metric) of every epoch reported so far: the history table and
    what Tune's trial folders recorded after its last write."""
    from orchestrator.results.rebuild import history_rows

    rows = history_rows(plan.folder)
    if plan.history is not None:
        rows.update({(r[schema.TRIAL_ID], r["epoch"]): r
                     for r in plan.history.to_dict("records")})
    return [(trial_id, epoch, row[plan.spec.metric]) for (trial_id, epoch), row in rows.items()]


def resume_sweep(
    plan: ResumePlan,
    *,
    address: str | None = None,
    errored: Errored = None,
    console: Console | None = None,
    quiet: bool = False,
    callbacks: list | None = None,
) -> SweepOutcome:
    """Continue an interrupted sweep from Tune's experiment state: finished trials are
    not run again, unfinished ones continue from their last checkpoint; errored ones
    are resumed from their checkpoint or restarted from scratch when `errored` says so."""
    return _drive(plan.spec, plan.folder, lambda cbs: _restore_tuner(plan, cbs, errored),
                  command="resume", address=address, console=console, quiet=quiet,
                  callbacks=callbacks, ended=plan.ended, drop_errored=errored == "restart",
                  before=plan.trials)
