"""sweep.json: what ran, with what, from which source, and when."""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from orchestrator.results import schema
from orchestrator.results.atomic import write_atomic


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


def write_json_atomic(data: dict, path: Path) -> None:
    text = json.dumps(data, indent=2, default=str) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text))


def write_sweep_json(results_dir: Path, spec: dict, **fields: Any) -> dict:
    """(Re)write sweep.json, keeping fields of an earlier write (e.g. `started_at`)."""
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
