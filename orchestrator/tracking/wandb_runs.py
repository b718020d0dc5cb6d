"""The sweep in Weights & Biases: one run per trial (named by the trial id, in a group
named by the sweep), its config the trial's settings, one history row per epoch
(step = epoch), and at its end the summary keys status, stop_reason, diagnosis,
diagnosis_reason and the best value. Online (W&B's server) or offline (run files that
`wandb sync` uploads later).

Written with W&B's own client, from the driver. A run's id is the sweep's identity
(its name and start) hashed, then the trial id, so a resumed sweep or `sweep track`
continues the same runs: what a run holds is read back first (offline: its fragments'
files, `wandb_files`; online: W&B's API), and only later epochs are sent, in a new
fragment of the run (W&B's resume), never a point twice.

W&B writes its files under `<dir>/wandb/` (`tracking.wandb.dir`, else the sweep's
folder), its service's own log included; nothing lands in the user's home."""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator import environ
from orchestrator.errors import OrchestratorError
from orchestrator.results import schema
from orchestrator.states import TrialStatus
from orchestrator.tracking.mirror import (
    END_FIELDS,
    SweepIdentity,
    epoch_metrics,
    present,
    settings_of,
    why,
)

FOLDER = "wandb"  # W&B's own folder name under `dir`
CACHE = ".cache"  # W&B's service log and caches, inside it


def client_environment(root: Path) -> contextlib.AbstractContextManager[None]:
    """W&B's cache (its service writes its log there) under the sweep's W&B folder, not
    the home folder (a value the user set is kept)."""
    return environ.defaults({"WANDB_CACHE_DIR": str(Path(root) / FOLDER / CACHE)})


def _client():
    try:
        import wandb
    except ImportError:
        raise OrchestratorError(
            "tracking.wandb: the W&B client is not installed here: pip install "
            "'ray-sweep-orchestrator[wandb]' (or wandb)") from None
    return wandb


def run_prefix(sweep: SweepIdentity) -> str:
    """The start of every run id of this sweep: a sweep started again under its name
    (--overwrite) gets other runs."""
    return hashlib.sha256(f"{sweep.name}\n{sweep.started_at}".encode()).hexdigest()[:8]


def check(track_command: str | None) -> None:
    """Online: fail with one line unless an API key is there and the server answers it
    (never naming the key); `track_command` sends the tables later. This runs before the
    sweep's folder exists, so W&B's service logs into a temporary folder."""
    wandb = _client()
    problem = None
    with tempfile.TemporaryDirectory(prefix="sweep-wandb-") as cache, \
            environ.defaults({"WANDB_CACHE_DIR": cache}):
        try:
            wandb.Api(timeout=15).viewer  # noqa: B018 (the request is the check)
        except Exception as exc:
            problem = exc
        finally:
            wandb.teardown()
    if problem is None:
        return
    then = ("or use `mode: offline` (W&B's files, `wandb sync` uploads them later), or "
            f"leave `tracking.wandb` out (the tables hold everything; `{track_command}` "
            "sends them later)" if track_command else "and run this again")
    what = ("has no API key here (run `wandb login` or set WANDB_API_KEY)"
            if isinstance(problem, wandb.errors.UsageError)
            else f"cannot reach W&B's server ({why(problem)})")
    raise OrchestratorError(f"tracking.wandb: mode online {what}; {then}")


class WandbTracker:
    key = "tracking.wandb"

    def __init__(self, project: str, entity: str | None, mode: str, root: Path):
        self.project, self.entity, self.mode = project, entity, mode
        self.root = Path(root)
        where = f"{entity}/{project}" if entity else project
        self.where = (f"W&B project {where} (offline: {self.root / FOLDER})"
                      if mode == "offline" else f"W&B project {where}")
        self.runs: dict[str, Any] = {}  # trial id -> its open run
        self.last: dict[str, int] = {}  # trial id -> last epoch the run holds
        self.ends: dict[str, tuple] = {}

    # -- what the runs hold ---------------------------------------------------
    def open(self, sweep: SweepIdentity) -> None:
        self.sweep = sweep
        self.prefix = run_prefix(sweep)
        self.group = sweep.name
        held = self._held_offline() if self.mode == "offline" else self._held_online()
        for trial_id, (last, summary) in held.items():
            if last is not None:
                self.last[trial_id] = last
            if present(summary.get(schema.STOP_REASON)):
                self.ends[trial_id] = tuple(str(summary.get(k) or "") for k in END_FIELDS)

    def _trial_of(self, run_id: str) -> str:
        return run_id.removeprefix(f"{self.prefix}-")

    def _held_offline(self) -> dict[str, tuple[int | None, dict]]:
        from orchestrator.tracking.wandb_files import held_runs

        found = held_runs(self.root / FOLDER, f"{self.prefix}-", self.project)
        return {self._trial_of(r.run_id): (r.last_step, r.summary) for r in found.values()
                if self.entity is None or r.entity in ("", self.entity)}

    def _held_online(self) -> dict[str, tuple[int | None, dict]]:
        wandb = _client()
        api = wandb.Api(timeout=30)
        path = f"{self.entity or api.default_entity}/{self.project}"
        held = {}
        try:
            runs = list(api.runs(path, filters={"group": self.group}))
        except ValueError:  # no such project yet
            return held
        for run in runs:
            if run.id.startswith(f"{self.prefix}-"):
                summary = dict(run.summary)
                step = summary.get("_step")
                held[self._trial_of(run.id)] = (int(step) if present(step) else None,
                                                summary)
        return held

    def last_epoch(self, trial_id: str) -> int | None:
        return self.last.get(trial_id)

    def end_state(self, trial_id: str) -> tuple | None:
        return self.ends.get(trial_id)

    # -- writing ----------------------------------------------------------------
    def _run(self, trial_id: str, settings: dict):
        """The trial's open run; a new fragment of it (W&B's resume) when it has none."""
        if trial_id in self.runs:
            return self.runs[trial_id]
        wandb = _client()
        self.root.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project=self.project, entity=self.entity, group=self.group, name=trial_id,
            id=f"{self.prefix}-{trial_id}", job_type="trial", config=settings,
            dir=str(self.root), mode=self.mode, resume="allow", reinit="create_new",
            settings=wandb.Settings(
                # the driver's console, machine and code are not the trial's
                console="off", x_disable_stats=True, x_disable_meta=True, save_code=False,
                disable_git=True, disable_job_creation=True, x_save_requirements=False,
                silent=True, allow_val_change=True))
        self.runs[trial_id] = run
        return run

    def log_epochs(self, trial_id: str, settings: dict, rows: list[dict]) -> None:
        run = self._run(trial_id, settings)
        for row in rows:
            # committed now, not when the next epoch comes (W&B's default for a step)
            run.log(epoch_metrics(row), step=int(row["epoch"]), commit=True)
            self.last[trial_id] = int(row["epoch"])

    def end_trial(self, trial_id: str, trial: Mapping[str, Any], end: tuple) -> None:
        run = self._run(trial_id, settings_of(trial))
        summary = {name: str(trial[name]) for name in END_FIELDS if present(trial.get(name))}
        best = schema.best_column(self.sweep.metric)
        if present(trial.get(best)):
            summary[best] = float(trial[best])
            if present(trial.get("best_epoch")):
                summary["best_epoch"] = int(trial["best_epoch"])
        run.summary.update(summary)
        run.finish(exit_code=1 if trial.get(schema.STATUS) == TrialStatus.ERROR else 0)
        del self.runs[trial_id]
        self.ends[trial_id] = end

    def finish(self, trials: list[Mapping[str, Any]], advice: list[str],
               interrupted: bool) -> None:
        # the runs of trials an interrupt cut (W&B has no "killed" a client may set):
        # `sweep resume` continues them
        for run in self.runs.values():
            if interrupted:
                run.mark_preempting()
            run.finish(exit_code=1 if interrupted else 0)
        self.runs.clear()
        self.close()

    def close(self) -> None:
        runs, self.runs = list(self.runs.values()), {}
        for run in runs:
            with contextlib.suppress(Exception):
                run.finish(exit_code=1)
        with contextlib.suppress(Exception):
            _client().teardown()  # ends W&B's service process, its files flushed
