"""sweep.json: what ran, with what, from which source, and when."""

from __future__ import annotations

import json
import platform
import subprocess
import threading
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from orchestrator.results import schema
from orchestrator.results.storage import as_location
from orchestrator.states import SweepStatus


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit(folder: Path) -> str | None:
    """The commit of the project's source tree, with `+dirty` when it has changes."""
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, timeout=10)
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "ray": _version("ray"),
        "torch": _version("torch"),
        "orchestrator": _version("ray-sweep-orchestrator"),
        "pandas": _version("pandas"),
        "pyarrow": _version("pyarrow"),
    }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json_atomic(data: dict, path) -> None:
    """JSON to a local path or a storage Location, whole or not at all."""
    as_location(path).write_text(json.dumps(data, indent=2, default=str) + "\n")


def write_sweep_json(results_dir, spec: dict, **fields: Any) -> dict:
    """(Re)write sweep.json, keeping fields of an earlier write (e.g. `started_at`).
    `results_dir` is a local path or a storage Location."""
    path = results_dir / schema.SWEEP_FILE
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update(
        spec=spec,
        versions=versions(),
        git_commit=git_commit(Path(__file__).resolve().parents[2]),
        host=platform.node(),
        **fields,
    )
    write_json_atomic(data, path)
    return data


def _recorded(results_dir) -> dict:
    """sweep.json as written so far, {} before the first write (the checked reader for
    commands is `results.folder.read_sweep_json`)."""
    path = results_dir / schema.SWEEP_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def begin_segment(results_dir, spec: dict, command: str, code_hash: str | None = None,
                  **fields: Any) -> None:
    """Record that `command` (run or resume) starts driving the sweep, and the hash of
    the user's code it ships (if any), with `fields` of the sweep (a warm start's
    source: kept by later segments). A segment left open by an earlier driver means
    that driver died without a word: it is `killed`."""
    earlier = _recorded(results_dir)
    segments = earlier.get("segments", [])
    for segment in segments:
        if "ended_at" not in segment:
            segment["status"] = "killed"
    started = now()
    segment = {"command": command, "started_at": started, "host": platform.node()}
    code = {"code_hash": code_hash} if code_hash else {}
    segments.append({**segment, **code})
    write_sweep_json(results_dir, spec, started_at=earlier.get("started_at") or started,
                     status=SweepStatus.RUNNING, segments=segments, **code, **fields)


def end_segment(results_dir, spec: dict, *, status: str, elapsed_s: float,
                trials_ended: int | None, restarted_errored: list[str] | None = None,
                reason: str | None = None, **counts: Any) -> None:
    """Close the open segment: when and how it ended (and why, when it was stopped by
    something other than a signal: `reason`), how many trials ended in it (None: not
    known) and which errored trials it restarted from scratch, under new ids."""
    segments = _recorded(results_dir).get("segments", [])
    ended = now()
    if segments:
        segments[-1].update(ended_at=ended, status=status, elapsed_s=round(elapsed_s, 3))
        if trials_ended is not None:
            segments[-1]["trials_ended"] = trials_ended
        if restarted_errored:
            segments[-1]["restarted_errored"] = restarted_errored
        if reason:
            segments[-1]["reason"] = reason
    write_sweep_json(results_dir, spec, ended_at=ended, status=status, segments=segments,
                     elapsed_s=round(sum(s.get("elapsed_s", 0) for s in segments), 3),
                     reason=reason, **counts)


class SegmentEnd:
    """The end of the open segment, written once: by the driver, or by the thread that
    ends the process when Ray was lost (`engine/gcs_watch.py`), whichever comes first."""

    def __init__(self, results_dir, spec: dict):
        self.results_dir, self.spec = results_dir, spec
        self.written = False
        self._lock = threading.Lock()

    def write(self, **fields: Any) -> None:
        """`end_segment(**fields)`, unless the end is written already."""
        with self._lock:
            if not self.written:
                end_segment(self.results_dir, self.spec, **fields)
                self.written = True
