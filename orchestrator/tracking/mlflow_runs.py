"""The sweep in MLflow: a parent run for the sweep (its spec as an artifact, the advice
at its end) and one child run per trial, named by the trial id, holding the trial's
settings as params, one point per epoch and metric (step = epoch), and at its end the
tags stop_reason, diagnosis, diagnosis_reason and its best value.

Written with MLflow's own client. What a run already holds is read back from the server
(each batch of points carries the tag `sweep.last_epoch` in the same request), so a
resumed sweep or `sweep track` continues the same runs without a duplicate point."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import yaml

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

# MLflow's limits per request (log_batch: 1000 items, metrics and tags together; one
# place is kept for the tag that marks the batch's last epoch, or the client would split
# the batch and send the tag apart from its points) and per value (older servers' limits)
BATCH_METRICS, BATCH_PARAMS, PARAM_CHARS, TAG_CHARS = 999, 100, 500, 5000
# what MLflow accepts in a metric's name; a loop's own metric may hold anything else
BAD_NAME = re.compile(r"[^A-Za-z0-9_\-. /]")
# MLflow retries an unanswered request 7 times with backoff (minutes), and the driver's
# Tune loop waits on every request: a server that is down must cost seconds. Its line per
# ended run ("View run ... at") would bury the progress view.
CLIENT_ENVIRONMENT = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                      "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
                      "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                      "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
ROLE, SWEEP_NAME, STARTED, LAST_EPOCH, PARAMS_LOGGED = (
    "sweep.role", "sweep.name", "sweep.started_at", "sweep.last_epoch", "sweep.params")
PARENT_ID = "mlflow.parentRunId"


def client_environment() -> contextlib.AbstractContextManager[None]:
    """CLIENT_ENVIRONMENT for the body of the `with` (a value the user set is kept)."""
    return environ.defaults(CLIENT_ENVIRONMENT)


def _cut(value: Any, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _now_ms() -> int:
    return int(time.time() * 1000)


class MlflowTracker:
    key = "tracking.mlflow"

    def __init__(self, uri: str, experiment: str | None = None):
        self.uri = uri
        self.experiment = experiment
        self.where = uri
        self.client = None
        self.parent_id: str | None = None
        self.runs: dict[str, str] = {}  # trial id -> run id
        self.last: dict[str, int] = {}  # trial id -> last epoch the run holds
        self.ends: dict[str, tuple] = {}
        self.stopped: set[str] = set()  # runs marked KILLED by an interrupted driver
        self.without_params: set[str] = set()  # runs made, their params never logged

    # -- reaching the server ------------------------------------------------
    def _client(self):
        if self.client is None:
            try:
                from mlflow import MlflowClient
            except ImportError:
                raise OrchestratorError(
                    "tracking.mlflow: the MLflow client is not installed here: pip install "
                    "'ray-sweep-orchestrator[mlflow]' (or mlflow)") from None
            self.client = MlflowClient(tracking_uri=self.uri)
        return self.client

    def check(self, track_command: str | None) -> None:
        """Fail with one line naming `tracking.mlflow.uri` unless the server answers;
        `track_command` sends the tables later (`sweep track ...` of this sweep; None
        when this is `sweep track`)."""
        with client_environment():
            try:
                self._client().search_experiments(max_results=1)
            except OrchestratorError:
                raise
            except Exception as exc:
                then = ("the MLflow server, or leave `tracking.mlflow` out of the spec (the "
                        f"tables hold everything; `{track_command}` sends them later)"
                        if track_command else "the MLflow server and run this again")
                raise OrchestratorError(
                    f"tracking.mlflow.uri: {self.uri} does not answer ({why(exc)}); start "
                    + then) from None

    def _experiment_id(self, name: str) -> str:
        client = self._client()
        found = client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                client.restore_experiment(found.experiment_id)
            return found.experiment_id
        try:
            return client.create_experiment(name)
        except Exception:  # made by another driver meanwhile
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def _search(self, experiment_id: str, query: str) -> Iterator[Any]:
        token = None
        while True:
            page = self._client().search_runs([experiment_id], query, max_results=1000,
                                              page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    # -- Tracker ------------------------------------------------------------
    def open(self, sweep: SweepIdentity) -> None:
        self._open(sweep)

    def _open(self, sweep: SweepIdentity) -> None:
        client = self._client()
        self.sweep = sweep
        try:
            self.started_ms = int(datetime.fromisoformat(sweep.started_at).timestamp() * 1000)
        except ValueError:
            self.started_ms = _now_ms()
        self.experiment_id = self._experiment_id(self.experiment or sweep.name)
        parents = list(self._search(
            self.experiment_id, f"tags.`{ROLE}` = 'sweep' and tags.`{SWEEP_NAME}` = "
            f"'{sweep.name}' and tags.`{STARTED}` = '{sweep.started_at}'"))
        if parents:
            self.parent_id = parents[0].info.run_id
            if parents[0].info.status != "RUNNING":
                client.update_run(self.parent_id, status="RUNNING")
        else:
            run = client.create_run(self.experiment_id, run_name=sweep.name, tags={
                ROLE: "sweep", SWEEP_NAME: sweep.name, STARTED: sweep.started_at,
                "sweep.folder": sweep.folder, "metric": sweep.metric, "mode": sweep.mode,
                "searched": ", ".join(sweep.searched)})
            self.parent_id = run.info.run_id
            self._spec_artifact(sweep)
        for run in self._search(self.experiment_id, f"tags.`{PARENT_ID}` = '{self.parent_id}'"):
            tags = run.data.tags
            trial_id = tags.get("trial_id")
            if not trial_id:
                continue
            self.runs[trial_id] = run.info.run_id
            if LAST_EPOCH in tags:
                self.last[trial_id] = int(tags[LAST_EPOCH])
            if schema.STOP_REASON in tags and run.info.status in ("FINISHED", "FAILED"):
                # the end as the run's tags hold it (written after the status: a driver
                # that died between the two left a run whose end is sent again)
                self.ends[trial_id] = tuple(tags.get(k, "") for k in END_FIELDS)
            if run.info.status == "KILLED":
                self.stopped.add(trial_id)
            if PARAMS_LOGGED not in tags:  # made by a driver that failed right after
                self.without_params.add(trial_id)

    def _spec_artifact(self, sweep: SweepIdentity) -> None:
        """The resolved spec as the parent run's `spec.yaml`. An artifact store the driver
        cannot write (a server run with --no-serve-artifacts, an S3 root without
        credentials here) costs the artifact, said in a tag, not the tracking."""
        from mlflow.entities import RunTag

        try:
            self._client().log_text(self.parent_id,
                                    yaml.safe_dump(sweep.spec, sort_keys=False), "spec.yaml")
        except Exception as exc:
            self._client().log_batch(self.parent_id, tags=[RunTag(
                "sweep.spec_artifact", _cut(f"not uploaded: {why(exc)}", TAG_CHARS))])

    def _stamp(self, row: Mapping[str, Any]) -> int:
        """A point's timestamp, the same on every send of it (a resend after a failure
        then matches the point already stored, which MLflow's SQL stores ignore): the
        sweep's start plus the trial's own clock at that epoch."""
        offset = row.get("time_total_s")
        offset = float(offset) if present(offset) else float(row["epoch"])
        return self.started_ms + int(offset * 1000)

    def last_epoch(self, trial_id: str) -> int | None:
        return self.last.get(trial_id)

    def end_state(self, trial_id: str) -> tuple | None:
        return self.ends.get(trial_id)

    def _run(self, trial_id: str, settings: dict) -> str:
        client = self._client()
        if trial_id in self.runs:
            run_id = self.runs[trial_id]
            if trial_id in self.stopped:  # an interrupted trial goes on
                client.update_run(run_id, status="RUNNING")
                self.stopped.discard(trial_id)
        else:
            run = client.create_run(self.experiment_id, run_name=trial_id, tags={
                "trial_id": trial_id, PARENT_ID: self.parent_id,
                SWEEP_NAME: self.sweep.name, STARTED: self.sweep.started_at})
            run_id = self.runs[trial_id] = run.info.run_id
            self.without_params.add(trial_id)
        if trial_id in self.without_params and settings:
            self._params(run_id, settings)
            self.without_params.discard(trial_id)
        return run_id

    def _params(self, run_id: str, settings: dict) -> None:
        """The trial's settings as params, and the mark that they are there in the last
        request (a driver that dies between the two leaves the run unmarked: the next
        one logs them again, the same values, which MLflow accepts)."""
        from mlflow.entities import Param, RunTag

        params = [Param(k, _cut(v, PARAM_CHARS)) for k, v in sorted(settings.items())]
        for at in range(0, len(params), BATCH_PARAMS):
            last = at + BATCH_PARAMS >= len(params)
            self._client().log_batch(run_id, params=params[at:at + BATCH_PARAMS],
                                     tags=[RunTag(PARAMS_LOGGED, "1")] if last else [])

    def log_epochs(self, trial_id: str, settings: dict, rows: list[dict]) -> None:
        from mlflow.entities import Metric

        run_id = self._run(trial_id, settings)
        batch: list = []
        last = -1
        for row in rows:
            stamp = self._stamp(row)
            points = [Metric(BAD_NAME.sub("_", k), v, stamp, int(row["epoch"]))
                      for k, v in epoch_metrics(row).items()]
            if batch and len(batch) + len(points) > BATCH_METRICS:
                self._send(run_id, trial_id, batch, last)
                batch = []
            batch.extend(points)
            last = int(row["epoch"])
        if rows:
            self._send(run_id, trial_id, batch, last)

    def _send(self, run_id: str, trial_id: str, points: list, last: int) -> None:
        from mlflow.entities import RunTag

        # the points and the mark of the last epoch they reach go in one request
        self._client().log_batch(run_id, metrics=points,
                                 tags=[RunTag(LAST_EPOCH, str(last))])
        self.last[trial_id] = last

    def end_trial(self, trial_id: str, trial: Mapping[str, Any], end: tuple) -> None:
        from mlflow.entities import Metric, RunTag

        client = self._client()
        run_id = self._run(trial_id, settings_of(trial))
        tags = {name: _cut(trial[name], TAG_CHARS) for name in END_FIELDS
                if present(trial.get(name))}
        best = schema.best_column(self.sweep.metric)
        metrics = []
        if present(trial.get(best)):
            tags[best] = str(trial[best])
            step = trial.get("best_epoch")
            wall = trial.get("wall_s")
            stamp = self.started_ms + int(1000 * float(wall if present(wall) else 0))
            metrics.append(Metric(best, float(trial[best]), stamp,
                                  int(step) if present(step) else 0))
        # the status first, the end's tags last: they are the mark that the end is there
        client.set_terminated(run_id, "FAILED" if trial.get(schema.STATUS) == TrialStatus.ERROR
                              else "FINISHED")
        client.log_batch(run_id, metrics=metrics,
                         tags=[RunTag(k, v) for k, v in tags.items()])
        self.ends[trial_id] = end

    def finish(self, trials: list[Mapping[str, Any]], advice: list[str],
               interrupted: bool) -> None:
        from mlflow.entities import RunTag

        client = self._client()
        if interrupted:  # a trial cut by the interrupt is no longer running
            for trial in trials:
                trial_id = trial[schema.TRIAL_ID]
                if trial_id in self.runs and trial_id not in self.ends:
                    client.set_terminated(self.runs[trial_id], "KILLED")
                    self.stopped.add(trial_id)
        tags = [RunTag("trials", str(len(trials)))]
        if advice:
            tags.append(RunTag("advice", _cut("\n".join(advice), TAG_CHARS)))
            client.log_text(self.parent_id, "\n".join(advice) + "\n", "advice.txt")
        best = _best(trials, self.sweep.metric, self.sweep.mode)
        if best is not None:
            column = schema.best_column(self.sweep.metric)
            tags += [RunTag("best_trial", str(best[schema.TRIAL_ID])),
                     RunTag(column, str(best[column]))]
        client.log_batch(self.parent_id, tags=tags)
        client.set_terminated(self.parent_id, "KILLED" if interrupted else "FINISHED")

    def close(self) -> None:
        self.client = None


def _best(trials: list[Mapping[str, Any]], metric: str, mode: str) -> Mapping | None:
    column = schema.best_column(metric)
    scored = [t for t in trials if present(t.get(column))]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda t: float(t[column]))
