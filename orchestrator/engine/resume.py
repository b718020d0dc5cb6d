"""Continue a sweep whose driver stopped (killed, interrupted, terminated) from Ray
Tune's own experiment state: finished trials are not run again, unfinished ones continue
from their last checkpoint, ASHA gets its rungs back, and the results tables stay the
record of what ended."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from orchestrator.engine import shipping
from orchestrator.engine.extend import EXTENSIONS_KEY, unsaved_extension
from orchestrator.engine.run import (
    SweepOutcome,
    drive,
    track_command,
    trainable,
)
from orchestrator.errors import OrchestratorError, first_line
from orchestrator.results import schema
from orchestrator.results.folder import (
    read_sweep_json,
    read_tables,
    sweep_json_path,
    tune_states,
)
from orchestrator.results.lease import refuse_if_held
from orchestrator.results.storage import Location, check_writable
from orchestrator.spec import SweepSpec, spec_from_mapping
from orchestrator.states import NOT_RETRIED_FILE, SweepStatus, TrialStatus

Errored = Literal["resume", "restart"] | None


@dataclass(frozen=True)
class ResumePlan:
    """What `sweep resume` found in a sweep folder, read before Ray starts."""

    folder: Location
    spec: SweepSpec
    status: str | None
    trials: pd.DataFrame | None
    history: pd.DataFrame | None
    errored: int
    warnings: tuple[str, ...] = ()
    # trials the tables held when the sweep was last extended: not the trials of the
    # experiment Tune restores (engine/extend.py)
    before_extension: frozenset[str] = frozenset()
    extension_unsaved: bool = False  # engine/extend.py: `unsaved_extension`

    @property
    def stop_reasons(self) -> dict[str, str]:
        """Trials the tables record as ended normally (their rows are final), and why
        each stopped."""
        if self.trials is None or not len(self.trials):
            return {}
        done = self.trials[(self.trials[schema.STATUS] == TrialStatus.TERMINATED)
                           & self.trials[schema.STOP_REASON].notna()]
        return dict(zip(done[schema.TRIAL_ID], done[schema.STOP_REASON]))

    @property
    def ended(self) -> frozenset[str]:
        """Trials the tables record as ended normally: their rows are final."""
        return frozenset(self.stop_reasons)

    def finished(self, errored: Errored) -> bool:
        """Nothing to do: every trial ended, and errored ones are not to be run again."""
        return self.status == SweepStatus.FINISHED and not (errored and self.errored)


def plan_resume(folder: Location) -> ResumePlan:
    """Check a sweep folder for `resume` without starting Ray: its sweep.json (the spec
    comes from there), its tables and Tune's experiment state."""
    data = read_sweep_json(folder)
    spec = spec_from_mapping(data["spec"], str(sweep_json_path(folder)))
    trials, history = read_tables(folder)
    if trials is None and data.get("status") == SweepStatus.FINISHED:
        # the trials table is gone (deleted, moved aside): its rows come back from the
        # history and Tune's trial folders, rather than "finished (0 trials)"
        from orchestrator.results.load import load_sweep

        rebuilt = load_sweep(folder)
        trials, history = rebuilt.trials, rebuilt.history
    errored = int((trials[schema.STATUS] == TrialStatus.ERROR).sum()) if trials is not None else 0
    extensions = data.get(EXTENSIONS_KEY) or []
    plan = ResumePlan(folder, spec, data.get("status"), trials, history, errored,
                      _code_warnings(data, spec),
                      frozenset(extensions[-1].get("trials_before", [])) if extensions
                      else frozenset(), unsaved_extension(folder, data))
    if plan.status != SweepStatus.FINISHED:
        _check_tune_state(folder)
    return plan


def _check_tune_state(folder: Location) -> None:
    """Tune's experiment state is there and whole: Tune, handed a state it cannot read,
    logs an error and starts the experiment afresh, which would lose every trial."""
    states = tune_states(folder)
    if not states:
        raise OrchestratorError(
            f"{folder}: has no Ray Tune experiment state (tuner.pkl and "
            "experiment_state-*.json), so it cannot be resumed; the driver died before Tune "
            f"saved any: start it again with `sweep run SPEC --overwrite`"
        )
    newest = states[-1]  # the one Tune restores
    try:
        json.loads(newest.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        older = ("move it aside to resume from the state the run before saved" if len(states) > 1
                 else "the sweep cannot be resumed: start it again with "
                 "`sweep run SPEC --overwrite`")
        raise OrchestratorError(f"{newest}: Ray Tune's experiment state is not readable "
                                f"({first_line(exc)}); {older}") from None


def _forget_data_errors(folder: Location) -> None:
    """Remove what trials that failed on their data or code left so that their retries
    fail at once (`trainable.not_retried`): resumed, they run the user's code again."""
    for trial in folder.children():
        marker = trial / NOT_RETRIED_FILE
        if marker.is_file():
            marker.fs.delete_file(marker.path)


def _code_warnings(recorded: dict, spec: SweepSpec) -> tuple[str, ...]:
    """A warning when the user's code differs from the code the sweep ran with: resumed
    trials would then train with other code than their checkpoints came from."""
    before = recorded.get("code_hash")
    now = shipping.code_hash(spec)
    if not before or before == now:
        return ()
    return (f"warning: the code in {', '.join(spec.code)} has changed since this sweep "
            f"started (sha256 {before[:12]} -> {(now or 'none')[:12]}); resumed trials "
            "run the code as it is now",)


class _DeletedCheckpointNoise(logging.Filter):
    """Tune's restored snapshot can list checkpoints Tune itself deleted later; when it
    tries to delete them again it logs an error with a traceback, though nothing is
    lost (the trainable restores from the newest checkpoint on disk). Drop that one."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, FileNotFoundError) and "checkpoint_" in str(exc)
                    and "Error handling checkpoint" in record.getMessage())


def _quiet_deleted_checkpoint_noise() -> None:
    """Add the filter once per process, however many sweeps it resumes."""
    logger = logging.getLogger("ray.tune.execution.tune_controller")
    if not any(isinstance(f, _DeletedCheckpointNoise) for f in logger.filters):
        logger.addFilter(_DeletedCheckpointNoise())


def _restore_tuner(plan: ResumePlan, callbacks: list, errored: Errored):
    from ray import tune

    from orchestrator.engine.stoppers import SearcherHearsOfEnds, StopEnded
    from orchestrator.engine.tune_compat import mark_ended, replay_history, restored, settling

    _quiet_deleted_checkpoint_noise()
    # trials the tables record as ended are not restored at all: Tune's snapshot can
    # predate their end and name a checkpoint it has deleted since (tune_compat/)
    marked = mark_ended(plan.folder, plan.ended)
    path = str(plan.folder.local) if plan.folder.local else plan.folder.path
    tuner = tune.Tuner.restore(
        path, trainable=trainable(plan.spec), resume_unfinished=True,
        resume_errored=errored == "resume", restart_errored=errored == "restart",
        storage_filesystem=None if plan.folder.local else plan.folder.fs,
    )
    # Tune restores the RunConfig pickled by the first run, callbacks included. This
    # driver's own (a sink that reloads the tables, a progress view on this console)
    # replace them, and trials the tables already record as ended are stopped at their
    # first report, should Tune's state not have been marked (a state of another shape).
    parts = restored(tuner)
    run_config, search_alg = parts.run_config, parts.search_alg
    run_config.callbacks = callbacks + (
        [SearcherHearsOfEnds(search_alg, _last_rows(plan, marked))]
        if marked and search_alg is not None else [])
    if plan.ended:
        run_config.stop = StopEnded(plan.ended)
    # (settling upgrades an older sweep's pickled HyperBand in place)
    replay_history(settling(parts.scheduler), _metric_rows(plan),
                   plan.spec.mode)
    return tuner


def _last_rows(plan: ResumePlan, trial_ids: list[str]) -> dict[str, dict]:
    """The last reported row of each of `trial_ids` in the history table (what Tune hands
    a searcher when a trial ends), {} for one the table lacks."""
    rows: dict[str, dict] = {trial_id: {} for trial_id in trial_ids}
    if plan.history is not None and len(plan.history):
        mine = plan.history[plan.history[schema.TRIAL_ID].isin(trial_ids)]
        for row in mine.sort_values("epoch").to_dict("records"):
            rows[row[schema.TRIAL_ID]] = {k: v for k, v in row.items() if not pd.isna(v)}
    return rows


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
    callbacks: list | None = None,
) -> SweepOutcome:
    """Continue an interrupted sweep from Tune's experiment state: finished trials are
    not run again, unfinished ones continue from their last checkpoint; errored ones
    are resumed from their checkpoint or restarted from scratch when `errored` says so."""
    from orchestrator.tracking.setup import check_reachable

    if plan.extension_unsaved:  # killed before Tune first saved it: it starts again
        from orchestrator.engine.extend import extend_sweep, plan_extend

        return extend_sweep(plan_extend(plan.folder, 0, again=True), address=address,
                            callbacks=callbacks, command="resume")
    check_writable(plan.folder)  # space back, writable again? before Ray starts
    refuse_if_held(plan.folder)  # fast, before Ray starts; the lease is taken once it runs
    if errored == "resume":  # the data or code of trials that failed on it was fixed
        _forget_data_errors(plan.folder)
    check_reachable(plan.spec.tracking, track_command(plan.folder, plan.spec))
    return drive(plan.spec, plan.folder, lambda cbs: _restore_tuner(plan, cbs, errored),
                 command="resume", address=address, callbacks=callbacks,
                 ended=plan.ended, drop_errored=errored == "restart", before=plan.trials,
                 lost=_lost(plan))


def _lost(plan: ResumePlan) -> frozenset[str]:
    """Trials the tables hold, unended, that Tune's newest state does not: they started
    after its last snapshot (a Searcher makes its trials one at a time), so Tune will
    not continue them and its restored searcher draws their places again under new
    random ids. Their rows go (ResultsSink's `lost`). Tune's basic generator (random,
    grid) makes such a trial again under the same id (its counter): its rows stay."""
    from orchestrator.engine.tune_compat import trials_in_state

    if plan.spec.searcher.name in ("random", "grid"):
        return frozenset()
    known = trials_in_state(plan.folder)
    if known is None or plan.trials is None or not len(plan.trials):
        return frozenset()
    unended = set(plan.trials[schema.TRIAL_ID]) - plan.ended - plan.before_extension
    return frozenset(unended - known)
