"""What travels with a submitted sweep, and where it lands on the cluster.

The job's working_dir holds the resolved spec and the small data files it names
(`package_job`); on the cluster, `stage_data` copies those files onto the sweep's shared
storage so that trials on every node read the same file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import OrchestratorError
from orchestrator.results.storage import is_uri
from orchestrator.spec import SweepSpec

# data files larger than this belong on shared storage, not in a job package
MAX_UPLOAD_BYTES = 50 * 2**20
SPEC_FILE = "spec.yaml"
DATA_DIR = "data"
CODE_DIR = "code"


def cluster_storage(spec: SweepSpec, storage: str | None) -> str:
    """Where the job keeps the sweep: a folder every node sees (an NFS-like mount), given
    as an absolute path. A relative one would land in the job's throw-away folder."""
    chosen = storage or spec.storage
    if is_uri(chosen):
        return chosen  # an object store: the same for every node
    if not Path(chosen).is_absolute():
        raise OrchestratorError(
            f"--storage: is {chosen!r}, a path relative to this machine; a submitted sweep "
            "needs a folder every node of the cluster sees, as an absolute path "
            "(e.g. --storage /mnt/sweeps)")
    return chosen


def check_warm_start(spec: SweepSpec, storage: str) -> None:
    """A submitted sweep reads its warm start on the cluster: from a URI, or by name (or
    path) in the sweep's own storage there (`storage`); a folder of this machine is
    refused, before anything reaches the cluster."""
    warm = spec.warm_start
    if warm is None:
        return
    there = "a submitted sweep reads its warm start on the cluster"
    if warm.storage is not None:
        if is_uri(warm.storage) or warm.storage.rstrip("/") == storage.rstrip("/"):
            return
        raise OrchestratorError(
            f"warm_start.storage: is {warm.storage!r}, a folder on this machine; {there}: "
            f"give a URI, or leave it out to look the name up in the sweep's storage there "
            f"({storage})")
    source = warm.source
    if is_uri(source) or not ("/" in source or Path(source).expanduser().is_dir()):
        return  # a URI, or a name looked up in the sweep's storage on the cluster
    if Path(source).is_absolute() and str(Path(source).parent) == storage.rstrip("/"):
        return
    raise OrchestratorError(
        f"warm_start.from: is {source!r}, a path on this machine; {there}: give the "
        f"sweep's name (looked up in the sweep's storage there, {storage}) or its URI")


def _package_data(value: str, package: Path, placed: dict[str, str]) -> str:
    """Copy a local data file into the job package; the spec then names it relative to
    the job's folder (`sweep run --stage-data` copies it onto the shared storage)."""
    path = Path(value)
    if not path.is_file():
        return value  # a path on the cluster (shared storage): left as it is
    size = path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise OrchestratorError(
            f"train.dataset.path: {path} is {size / 2**20:.0f} MiB, more than a job "
            f"carries ({MAX_UPLOAD_BYTES // 2**20} MiB): put it on the cluster's shared "
            "storage and name it by its path there")
    if value not in placed:
        name = f"{len(placed)}-{path.name}"
        (package / DATA_DIR).mkdir(exist_ok=True)
        shutil.copy2(path, package / DATA_DIR / name)
        placed[value] = f"{DATA_DIR}/{name}"
    return placed[value]


def package_job(spec: SweepSpec, storage: str, package: Path) -> dict[str, Any]:
    """Write the job's working_dir into `package` (the resolved spec, the local data
    files it names and the user's code folders, as `code/<index>`); returns the spec as
    written. The job needs nothing of this machine once it is submitted."""
    data = spec.resolved()
    data["storage"] = storage
    placed: dict[str, str] = {}
    _map_data_paths(data, lambda value: _package_data(value, package, placed))
    if spec.code:
        from orchestrator.engine.shipping import stage

        stage(list(spec.code), package / CODE_DIR, spec.code_exclude)
        data["code"] = [f"{CODE_DIR}/{i}" for i in range(len(spec.code))]
    (package / SPEC_FILE).write_text(yaml.safe_dump(data, sort_keys=False))
    return data


def _map_data_paths(data: dict, change) -> None:
    """Apply `change` to every data file a resolved spec names: `dataset.path`, fixed or
    searched (choice/grid)."""
    dataset = data["train"].get("dataset")
    if isinstance(dataset, dict) and "factory" not in dataset and dataset.get("path"):
        dataset["path"] = change(dataset["path"])
    searched = data["search_space"].get("dataset.path")
    if searched:
        (kind, values), = searched.items()
        searched[kind] = [change(v) for v in values]


def stage_data(spec: SweepSpec) -> SweepSpec:
    """In a submitted job: copy the data files the job carried (under its working dir)
    into the sweep's shared storage, so trials on every node read the same file, and
    name them there. Content-addressed: a file staged before is not copied again."""
    import hashlib

    from orchestrator.results.atomic import write_atomic
    from orchestrator.spec.model import spec_from_mapping

    here = Path.cwd().resolve()
    target = Path(spec.storage).expanduser() / ".data"
    carried = []

    def stage(value: Any) -> Any:
        path = Path(value) if isinstance(value, str) else None
        if path is None or not path.is_file() or not path.resolve().is_relative_to(here):
            return value
        if is_uri(spec.storage):
            carried.append(str(path.name))
            return value
        content = path.read_bytes()
        staged = target / f"{hashlib.sha256(content).hexdigest()[:12]}-{path.name}"
        if not staged.is_file():
            write_atomic(staged, lambda tmp: tmp.write_bytes(content))
        return str(staged)

    data = spec.resolved()
    _map_data_paths(data, stage)
    if carried:
        raise OrchestratorError(
            f"train.dataset.path: {', '.join(carried)} came with the job, but the storage is "
            "an object store, which the trials cannot read data files from: put the file on "
            "a path every node reads (a shared mount) and name it by that path")
    return spec_from_mapping(data, "<staged spec>")
