"""Spec -> Ray Tune Tuner; runs a sweep on an embedded Ray or a cluster.

`run_sweep` and `resume_sweep` (`orchestrator.engine.resume`) share one driver, `drive`:
a Ray session, SIGTERM handled like Ctrl-C, the results sink, sweep.json's record of each
segment, and the outcome. They differ only in how the Tuner is made: built from the
spec, or restored from Tune's own experiment state. What the user sees while it runs
(a progress view) comes in from the caller as a Tune callback.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from orchestrator import environ
from orchestrator.engine import shipping, tune_noise
from orchestrator.engine.capacity import check_capacity, group_limit
from orchestrator.engine.gcs_watch import GcsWatch
from orchestrator.engine.interrupts import Received, sigterm_as_sigint, stop_lines, uninterrupted
from orchestrator.engine.ray_session import gcs_address, ray_session
from orchestrator.engine.tune_compat import autoscaler
from orchestrator.engine.warm_start import RERUN_KEY, WarmStartPlan, plan_warm_start
from orchestrator.errors import (
    OrchestratorError,
    StorageFailed,
    storage_problem,
    strerror,
    warn,
)
from orchestrator.results import schema
from orchestrator.results.lease import refuse_if_held, sweep_lease
from orchestrator.results.provenance import SegmentEnd, begin_segment
from orchestrator.results.storage import Location, check_writable, open_storage
from orchestrator.spec import SweepSpec
from orchestrator.states import SweepStatus, TrialStatus

if TYPE_CHECKING:
    from orchestrator.engine.extend import ExtendPlan

CHECKPOINTS_KEPT = 2
# PBT restores other trials' checkpoints: keep more so they are not deleted under it
CHECKPOINTS_KEPT_PBT = 4


@dataclass
class SweepOutcome:
    location: Location
    trials: pd.DataFrame
    history: pd.DataFrame
    elapsed_s: float
    signal: str | None = None  # the stop signal the driver received ('SIGTERM'), if any
    interrupted: bool = False  # stopped before its end: `sweep resume` continues it

    @property
    def experiment_dir(self) -> Path | Location:
        """The sweep's folder: a local Path, or a Location on an object store."""
        return self.location.local or self.location

    @property
    def results_dir(self) -> Path | Location:
        return self.experiment_dir / schema.RESULTS_DIR

    @property
    def errored(self) -> int:
        if not len(self.trials):
            return 0
        return int((self.trials[schema.STATUS] == TrialStatus.ERROR).sum())

    @property
    def unfinished(self) -> int:
        """Trials with no stop reason: the sweep was interrupted before they ended."""
        return int(self.trials[schema.STOP_REASON].isna().sum()) if len(self.trials) else 0


def experiment_dir(spec: SweepSpec) -> Location:
    return open_storage(spec.storage) / spec.name


def _trial_dirname(trial) -> str:
    return trial.trial_id


def trainable(spec: SweepSpec):
    from ray import tune

    from orchestrator.spec.settings import LoopConfig

    if spec.resources.workers > 1:
        # the trial is a driver that launches a Ray Train worker group, which asks Ray
        # for the workers' resources itself: the driver holds no CPU, or a group that
        # fills the nodes could never start; Tune refuses an empty request, so a byte
        from orchestrator.trainable.distributed import train_group

        return tune.with_resources(train_group, {"cpu": 0, "memory": 1})
    if isinstance(spec.train, LoopConfig):
        from orchestrator.trainable.loop import train_loop as function
    else:
        from orchestrator.trainable.tune_entry import train_trial as function
    return tune.with_resources(function, {"cpu": spec.resources.cpu,
                                          "gpu": spec.resources.gpu})


def build_tuner(spec: SweepSpec, callbacks: list, warm: WarmStartPlan | None = None,
                extension: ExtendPlan | None = None):
    """The Tuner of a new sweep; with a warm start, its searcher is given the earlier
    trials and the re-runs (engine/warm_start.py); an extension's (engine/extend.py) is
    given the sweep's own trials or its new configurations, its scheduler their rungs."""
    from ray import tune
    from ray.tune.search import Searcher

    from orchestrator.engine.context import build_context
    from orchestrator.engine.schedulers import create_scheduler
    from orchestrator.engine.searchers import create_searcher
    from orchestrator.engine.space import param_space

    if spec.resources.workers > 1:  # Tune counts trials, not their worker groups
        spec = spec.model_copy(update={"max_concurrent_trials": group_limit(spec)})
    context = build_context(spec, warm, extension)
    search_alg = create_searcher(spec.searcher, context)
    scheduler = create_scheduler(spec.scheduler, context)
    if extension is not None:
        from orchestrator.engine.tune_compat import replay_history

        replay_history(scheduler, list(extension.rows), spec.mode)
    storage_path, storage_filesystem = open_storage(spec.storage).tune_storage()
    space = param_space(spec)
    # every trial of a warm start says whether it is a re-run (trials.parquet), an
    # extension's of a warm-started sweep too (none is)
    if (warm and warm.reruns) or (extension is not None and spec.warm_start is not None
                                  and spec.warm_start.rerun_best > 0):
        space[RERUN_KEY] = False
    return tune.Tuner(
        trainable(spec),
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            num_samples=spec.num_samples + (warm.extra_trials if warm else 0),
            scheduler=scheduler,
            search_alg=search_alg,
            # a Searcher is limited here; the basic generator limits itself (searchers.py)
            max_concurrent_trials=(
                spec.max_concurrent_trials if isinstance(search_alg, Searcher) else None
            ),
            time_budget_s=spec.time_budget_s,
            # a trial of several workers is not reused: Tune stops a reused trial's
            # function without ending the worker group it started, which would hold its
            # workers' CPUs from the next trial; a new actor takes its group with it
            reuse_actors=spec.resources.workers == 1,
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


# Tune's settings for a driver of ours, set for the run and put back after it: our
# progress view replaces Tune's console output; per-epoch checkpoints make Tune warn about
# frequent experiment snapshots, which is expected here; of Tune's loggers only the JSON
# one runs (params.json, result.json: the tables are rebuilt from them): its CSV and
# TensorBoard ones repeat the tables at every result, and the latter imports torch into
# the driver and fsyncs per result (bench.scale). A value the user set is kept (=0 brings
# Tune's loggers back).
TUNE_ENVIRONMENT = {
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
}


def tune_environment() -> contextlib.AbstractContextManager[None]:
    """TUNE_ENVIRONMENT for the body of the `with`, the process's own values after it."""
    return environ.defaults(TUNE_ENVIRONMENT)


def drive(spec: SweepSpec, folder: Location, make_tuner: Callable[[list], Any], *,
          command: str, address: str | None, callbacks: list | None, fresh: bool = False,
          ended: frozenset[str] = frozenset(), drop_errored: bool = False,
          before: pd.DataFrame | None = None,
          may_write: Callable[[], None] = lambda: None,
          record: dict | None = None, lost: frozenset[str] = frozenset()) -> SweepOutcome:
    """Start or join Ray, take the sweep's lease (one writer; `may_write` then checks,
    under it, that this driver may write the folder), drive the Tuner
    `make_tuner(callbacks)` makes to its end (or to an interrupt) and record the segment
    in sweep.json. `callbacks` are extra Tune callbacks (a progress view); one-line warnings
    for the user are `SweepWarning`s; `record` holds fields for sweep.json (a warm start's
    source); `lost` trials' rows go (ResultsSink). SIGTERM is a Ctrl-C until the end is
    recorded."""
    with sigterm_as_sigint() as received:  # and again once Ray is up (it sets its own)
        return _drive(spec, folder, make_tuner, received, command=command, address=address,
                      callbacks=callbacks, fresh=fresh, ended=ended,
                      drop_errored=drop_errored, before=before, may_write=may_write,
                      record=record or {}, lost=lost)


def _drive(spec: SweepSpec, folder: Location, make_tuner: Callable[[list], Any],
           received: Received, *, command: str, address: str | None,
           callbacks: list | None, fresh: bool,
           ended: frozenset[str], drop_errored: bool, before: pd.DataFrame | None,
           may_write: Callable[[], None], record: dict,
           lost: frozenset[str]) -> SweepOutcome:
    from ray.tune.logger import JsonLoggerCallback

    from orchestrator.engine.context import build_context
    from orchestrator.engine.groups import EndGroups
    from orchestrator.engine.schedulers import scheduler_warning
    from orchestrator.engine.stoppers import NoRetryOfDataErrors
    from orchestrator.engine.storage_guard import (
        StorageGuard,
        storage_errors,
        tune_refusals_to,
        whole_tune_files,
    )
    from orchestrator.results.sink import ResultsSink

    resolved = spec.resolved()
    results_dir = folder / schema.RESULTS_DIR
    resume = resume_command(folder, spec)
    # Ray first: a cluster that cannot be joined, or a Ray that cannot start, leaves
    # nothing behind; then the lease, before anything of the sweep is written. A write
    # the storage refuses from here on is one line (storage_guard), exit 4.
    with shipping.runtime_env(spec) as env, ray_session(address, runtime_env=env) as ours, \
            sigterm_as_sigint(received), storage_errors(folder, resume), \
            sweep_lease(folder, command) as lease, tune_environment():
        # a trial no node can hold would wait for good: one line before anything is
        # written (a warning where an autoscaler may add such a node)
        check_capacity(spec, autoscaler() if address else None)
        may_write()
        if address:
            _warn_if_storage_is_not_shared(spec)
        if line := scheduler_warning(spec.scheduler, spec.trial_count, build_context(spec)):
            warn(line)
        if fresh:
            folder.delete()
        begin_segment(results_dir, resolved, command, code_hash=shipping.code_hash(spec),
                      **record)
        end = SegmentEnd(results_dir, resolved)
        sink = ResultsSink(results_dir, spec.metric, spec.mode, spec.time_budget_s,
                           ended=ended, drop_errored=drop_errored, lost=lost)
        # a write the storage refuses, or a lease taken over, stops it as Ctrl-C does
        guard = StorageGuard(sink, lease_lost=lambda: lease.lost if lease else None)
        tracking = _tracking(spec, folder, sink)
        started = time.monotonic()

        def record_lost(reason: str) -> None:  # from the watch's thread (gcs_watch.py)
            end.write(status=SweepStatus.INTERRUPTED, elapsed_s=time.monotonic() - started,
                      trials_ended=None, reason=f"ray: {reason}")
            if lease is not None:
                lease.release()

        watch = GcsWatch(gcs_address(), record_lost, resume,
                         own_processes=ours and not address)
        try:
            with watch, tune_refusals_to(guard), whole_tune_files(), tune_noise.quiet(), \
                    stop_lines(resume, unless=lambda: watch.lost is not None):
                groups = [EndGroups()] if spec.resources.workers > 1 else []
                make_tuner([JsonLoggerCallback(), sink, guard, NoRetryOfDataErrors(),
                            *groups, *tracking, *(callbacks or [])]).fit()
        except KeyboardInterrupt:  # a second Ctrl-C: Tune stopped at once, unsaved
            received.at_once = True
        with uninterrupted():
            elapsed = time.monotonic() - started
            sink.write_whole()  # Tune may end without calling on_experiment_end
        try:
            for mirror in () if received.at_once else tracking:
                mirror.finish()
        except KeyboardInterrupt:  # `sweep track` sends what they missed
            received.at_once = True
    try:
        with uninterrupted():
            return _record_end(end, sink, guard, folder, spec, before, elapsed, received,
                               watch.lost)
    finally:
        watch.recorded()  # after a lost GCS: one line, exit 3


def _record_end(end: SegmentEnd, sink, guard, folder: Location, spec: SweepSpec,
                before: pd.DataFrame | None, elapsed: float, received: Received,
                lost: str | None) -> SweepOutcome:
    """Write the segment's end into sweep.json (or say why it cannot be) and return the
    sweep's outcome."""
    from orchestrator.engine.storage_guard import storage_failed

    results_dir = folder / schema.RESULTS_DIR
    trials, history = sink.frames()
    interrupted = bool(received.at_once or lost or
                       (len(trials) and trials[schema.STOP_REASON].isna().any()))
    outcome = SweepOutcome(folder, trials, history, elapsed, received.name, interrupted)
    write_end = dict(status=SweepStatus.INTERRUPTED if interrupted else SweepStatus.FINISHED,
                     elapsed_s=elapsed, trials_ended=_ended_in_segment(before, trials),
                     trials=len(trials), errored=outcome.errored,
                     budget_stopped=sink.budget_stopped,
                     results_write_s=round(sink.write_s, 3),
                     history_write_s=round(sink.history_write_s, 3))
    if lost:
        write_end["reason"] = f"ray: {lost}"
    elif received.at_once:
        write_end["reason"] = "stopped at once by a second Ctrl-C"
    if sink.dropped:
        write_end["restarted_errored"] = sink.dropped
    own = [c for c in history.columns if c not in schema.HISTORY_COLUMNS]
    if own:  # a user's loop's own metrics: float columns of both tables
        write_end["loop_metrics"] = {name: "float64" for name in sorted(own)}
    if guard.lease_lost:  # another driver writes this sweep now: nothing more from this one
        raise StorageFailed(f"lease: {guard.lease_lost}; this driver stopped as on Ctrl-C "
                            f"and wrote no more: see `sweep ls` for who writes it now")
    if guard.failure:  # stopped as on Ctrl-C; sweep.json says why where it can be written
        write_end["status"] = SweepStatus.INTERRUPTED
        write_end["reason"] = f"storage: {guard.failure}"
        with contextlib.suppress(OSError):
            end.write(**write_end)
        raise storage_failed(folder, guard.failure, resume_command(folder, spec))
    try:
        end.write(**write_end)
    except OSError as exc:  # the disk filled up between the tables and sweep.json
        problem = storage_problem(exc)
        if problem is None:
            raise
        results = results_dir / schema.SWEEP_FILE
        raise StorageFailed(
            f"storage: cannot write {results} ({strerror(problem)}); "
            "the sweep ran to its end and its tables are written: make room, then "
            f"`{resume_command(folder, spec)}` records its end") from None
    return outcome


def _tracking(spec: SweepSpec, folder: Location, sink) -> list:
    """The tracking callback (after the sink: it sends the rows the sink holds), if the
    spec asks for MLflow or TensorBoard."""
    if not spec.tracking.enabled:
        return []
    from orchestrator.tracking.live import TrackingCallback

    return [TrackingCallback(spec.tracking, folder, sink, track_command(folder, spec))]


def _warn_if_storage_is_not_shared(spec: SweepSpec) -> None:
    import ray

    from orchestrator.results.storage import storage_warning

    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    warning = storage_warning(spec.storage, nodes)
    if warning:
        warn(warning)


def _ended_in_segment(before: pd.DataFrame | None, after: pd.DataFrame) -> int:
    """Trials whose end (status and stop reason) was first recorded in this segment."""
    def ends(frame: pd.DataFrame | None) -> dict:
        if frame is None or not len(frame):
            return {}
        done = frame[frame[schema.STOP_REASON].notna()]
        return dict(zip(done[schema.TRIAL_ID], zip(done[schema.STATUS], done[schema.STOP_REASON])))
    earlier = ends(before)
    return sum(1 for trial_id, end in ends(after).items() if earlier.get(trial_id) != end)


def sweep_command(verb: str, folder: Location, spec: SweepSpec) -> str:
    """`sweep VERB` of this sweep: by its folder, or on an object store by name and
    storage URI (whose query the folder's own name would lose)."""
    if folder.local:
        return f"sweep {verb} {folder.local}"
    return f"sweep {verb} {spec.name} --storage '{spec.storage}'"


def resume_command(folder: Location, spec: SweepSpec) -> str:
    """The command that continues this sweep."""
    return sweep_command("resume", folder, spec)


def track_command(folder: Location, spec: SweepSpec) -> str:
    """The command that sends this sweep's tables to its trackers again."""
    return sweep_command("track", folder, spec)


def run_sweep(
    spec: SweepSpec,
    *,
    address: str | None = None,
    overwrite: bool = False,
    callbacks: list | None = None,
    warm: WarmStartPlan | None = None,
) -> SweepOutcome:
    """Run `spec` to the end and return its result tables. `callbacks` are extra
    Ray Tune callbacks (they must pickle: Tune saves them with the experiment). A spec's
    `warm_start` is read here, before Ray starts, unless its plan `warm` is given."""
    from orchestrator.tracking.setup import check_reachable
    from orchestrator.trainable.table_data import check_tables

    check_tables(spec)  # bad data is one line here, not a traceback in every trial
    folder = experiment_dir(spec)
    check_reachable(spec.tracking, track_command(folder, spec))  # MLflow down: one line

    def new_name() -> None:
        if folder.exists() and not overwrite:
            raise OrchestratorError(
                f"name: a sweep {spec.name!r} already exists in {folder.parent}; "
                f"continue it with `{resume_command(folder, spec)}`, or pass --overwrite "
                "to start over"
            )

    if spec.warm_start and warm is None:
        warm = plan_warm_start(spec)  # bad input: one line, before Ray starts
    check_writable(folder.parent)  # a full, read-only or missing storage: before Ray
    refuse_if_held(folder)  # fast, before Ray starts; the lease is taken once it runs
    new_name()  # before Ray starts; again under the lease (another run may have begun)
    return drive(spec, folder, lambda cbs: build_tuner(spec, cbs, warm), command="run",
                 address=address, callbacks=callbacks, fresh=True,
                 may_write=new_name, record={"warm_start": warm.record()} if warm else None)
