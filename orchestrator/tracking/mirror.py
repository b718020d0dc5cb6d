"""What each tracker holds of a sweep, and sending it the rest.

A tracker is told only what it lacks: per trial, the epochs after the last one it holds,
and the trial's end once (again if the end changes, e.g. a trial resumed). The same
`Mirror` serves the live driver (the rows the results sink holds, after its writes) and
`sweep track` (the rows of the tables), so a resumed sweep, or a replay after the
tracking server was down, sends exactly the missing points and no point twice.

A tracker that fails is reported once and dropped for the rest of the run: the sweep
goes on, and `sweep track NAME` sends what it missed."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.errors import first_line, warn
from orchestrator.results import schema

# history columns that are bookkeeping, not curves
NOT_CURVES = frozenset({schema.TRIAL_ID, "epoch", "batch_size", "time_total_s",
                        "exploited_from"})
END_FIELDS = (schema.STATUS, schema.STOP_REASON, "diagnosis", "diagnosis_reason")


def why(exc: BaseException) -> str:
    """The reason in a tracking client's error, short: its errno text when a connection
    failed, else the urllib3 error it was caused by (the whole message repeats the URL,
    the pool and the retry policy), else its first line, cut."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\"\)]+)", text)
    if found:
        return found.group(1).strip()
    caused = re.search(r"Caused by (\w+)\(", text)
    if caused:
        return caused.group(1)
    return first_line(exc)[:120]


def present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def epoch_metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """The curves' values of one history row: finite numbers, by column name."""
    return {k: float(v) for k, v in row.items()
            if k not in NOT_CURVES and isinstance(v, int | float) and not isinstance(v, bool)
            and math.isfinite(v)}


def settings_of(trial: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's settings, searched and fixed, by their dotted key (the table's
    `config.` column without its prefix)."""
    prefix = schema.CONFIG_PREFIX
    return {k[len(prefix):]: v.item() if hasattr(v, "item") else v
            for k, v in trial.items() if k.startswith(prefix) and present(v)}


def end_of(trial: Mapping[str, Any]) -> tuple | None:
    """How the trial ended (status, stop reason, diagnosis and its reason); None while
    it has not."""
    if not present(trial.get(schema.STOP_REASON)):
        return None
    return tuple(str(trial[k]) if present(trial.get(k)) else "" for k in END_FIELDS)


@dataclass(frozen=True)
class SweepIdentity:
    """What names one sweep in a tracker: a sweep started again under the same name
    (--overwrite) has another `started_at`, so its runs are not mixed with the old."""

    name: str
    started_at: str
    folder: str
    metric: str
    mode: str
    spec: dict = field(default_factory=dict, compare=False)

    @property
    def searched(self) -> list[str]:
        return list(self.spec.get("search_space", {}))


class Tracker(Protocol):
    key: str  # the spec key that configures it, for messages: "tracking.mlflow"
    where: str  # where it writes, for messages

    def open(self, sweep: SweepIdentity) -> None: ...
    def last_epoch(self, trial_id: str) -> int | None: ...
    def end_state(self, trial_id: str) -> tuple | None: ...
    def log_epochs(self, trial_id: str, settings: dict, rows: list[dict]) -> None: ...
    def end_trial(self, trial_id: str, trial: Mapping[str, Any], end: tuple) -> None: ...
    def finish(self, trials: list[Mapping[str, Any]], advice: list[str],
               interrupted: bool) -> None: ...
    def close(self) -> None: ...


@dataclass
class Mirror:
    trackers: list[Tracker]
    resend_hint: str  # the command that sends what a lost tracker missed
    quiet: bool = False  # no warning for a tracker dropped (`sweep track` says it after)
    lost: list[str] = field(default_factory=list)  # keys of the trackers dropped
    failures: list[str] = field(default_factory=list)  # "KEY: WHERE failed (WHY)" of each

    def _guarded(self, tracker: Tracker, what: Callable[[], None]) -> None:
        try:
            what()
        except Exception as exc:  # any failure of a tool: never the sweep's
            self.trackers.remove(tracker)
            self.lost.append(tracker.key)
            failure = f"{tracker.key}: {tracker.where} failed ({why(exc)})"
            self.failures.append(failure)
            if not self.quiet:
                warn(f"warning: {failure}; the sweep goes on without it; "
                     f"`{self.resend_hint}` sends what it missed")
            try:
                tracker.close()
            except Exception:
                pass

    def open(self, sweep: SweepIdentity) -> None:
        for tracker in list(self.trackers):
            self._guarded(tracker, lambda t=tracker: t.open(sweep))

    def sync(self, trials: Mapping[str, Mapping[str, Any]],
             by_trial: Mapping[str, Mapping[int, Mapping[str, Any]]],
             only: Iterable[str] | None = None) -> int:
        """Send each tracker the epochs and ends it lacks, of the trials in `only` (all
        when None); the number of epochs sent, summed over trackers."""
        sent = 0
        ids = list(trials if only is None else only)
        for tracker in list(self.trackers):
            def send(t: Tracker = tracker) -> None:
                nonlocal sent
                for trial_id in ids:
                    trial = trials.get(trial_id)
                    if trial is None:
                        continue
                    epochs = by_trial.get(trial_id, {})
                    after = t.last_epoch(trial_id)
                    new = [dict(epochs[e]) for e in sorted(epochs)
                           if after is None or e > after]
                    if new:
                        t.log_epochs(trial_id, settings_of(trial), new)
                        sent += len(new)
                    end = end_of(trial)
                    if end is not None and end != t.end_state(trial_id):
                        t.end_trial(trial_id, trial, end)
            self._guarded(tracker, send)
        return sent

    def finish(self, trials: list[Mapping[str, Any]], advice: list[str],
               interrupted: bool) -> None:
        for tracker in list(self.trackers):
            self._guarded(tracker, lambda t=tracker: t.finish(trials, advice, interrupted))
        self.close()

    def close(self) -> None:
        for tracker in list(self.trackers):
            self._guarded(tracker, tracker.close)
