"""Sweeps as Ray jobs: submit, follow, list and stop them through the Ray Jobs API.

A submitted job runs `sweep run` (or `sweep resume`) on the cluster's head with a
working_dir holding only what it needs: the resolved spec and the small data files it
names. Jobs are submitted so that `ray job stop` / `sweep stop` sends SIGINT and waits,
which lets Tune snapshot the sweep for `sweep submit --resume`.

The Jobs API runs code for whoever reaches it: the client sends Ray's auth token on
every call and refuses to talk plain HTTP to another machine without one.
"""

from __future__ import annotations

import ipaddress
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from orchestrator.errors import OrchestratorError
from orchestrator.ray_session import auth_token
from orchestrator.spec import SweepSpec
from orchestrator.storage import is_uri

# Tune snapshots on SIGINT; the job supervisor waits this long before it kills
STOP_WAIT_S = 120
JOB_ENV = {"RAY_JOB_STOP_SIGNAL": "SIGINT", "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_WAIT_S)}
# data files larger than this belong on shared storage, not in a job package
MAX_UPLOAD_BYTES = 50 * 2**20
SPEC_FILE = "spec.yaml"
DATA_DIR = "data"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect(address: str, insecure: bool = False):
    """A JobSubmissionClient for the dashboard at `address` (http://HOST:PORT), with the
    auth token in its headers."""
    parsed = urlparse(address if "://" in address else f"http://{address}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise OrchestratorError(f"--address: {address!r} is not http(s)://HOST:PORT")
    token = auth_token()
    if token is None and parsed.scheme == "http" and not _is_loopback(parsed.hostname) \
            and not insecure:
        raise OrchestratorError(
            f"--address: {address} is another machine over plain HTTP and no Ray auth "
            "token is configured (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token); "
            "anyone who reaches a Jobs API runs code on the cluster: set the token, tunnel "
            "with `ray dashboard cluster.yaml`, or pass --insecure"
        )
    import logging

    from ray.job_submission import JobSubmissionClient

    # the SDK logs each upload and websocket close at INFO: not the user's business
    logging.getLogger("ray.dashboard").setLevel(logging.WARNING)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return JobSubmissionClient(parsed.geturl(), headers=headers)
    except Exception as exc:  # connection refused, wrong token, not a Ray dashboard...
        from orchestrator.errors import RayUnavailable

        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RayUnavailable(f"--address: the Ray Jobs API at {address} did not answer "
                             f"({first}); is the dashboard running and reachable (`ray "
                             "dashboard cluster.yaml` forwards it)?") from exc


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
    """Write the job's working_dir into `package` (the resolved spec and the local data
    files it names); returns the spec as written."""
    data = spec.resolved()
    data["storage"] = storage
    placed: dict[str, str] = {}
    _map_data_paths(data, lambda value: _package_data(value, package, placed))
    (package / SPEC_FILE).write_text(yaml.safe_dump(data, sort_keys=False))
    return data


def _map_data_paths(data: dict, change) -> None:
    """Apply `change` to every data file a resolved spec names: `dataset.path`, fixed or
    searched (choice/grid)."""
    dataset = data["train"]["dataset"]
    if dataset.get("path"):
        dataset["path"] = change(dataset["path"])
    searched = data["search_space"].get("dataset.path")
    if searched:
        (kind, values), = searched.items()
        searched[kind] = [change(v) for v in values]


def call(what: str, fn, *args: Any, retry_s: float = 60.0, **kwargs: Any) -> Any:
    """A Jobs API call as one line on failure (exit 3). Right after a head starts, its
    job agent is not ready ("No available agent"): such calls are retried a while."""
    from orchestrator.errors import RayUnavailable

    deadline = time.monotonic() + retry_s
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # the SDK raises RuntimeError, requests' errors, ...
            text = str(exc).strip()
            if "No available agent" in text and time.monotonic() < deadline:
                time.sleep(1.0)
                continue
            first = text.splitlines()[0] if text else type(exc).__name__
            raise RayUnavailable(f"{what} failed: {first}") from exc


@dataclass
class Submitted:
    job_id: str
    name: str
    storage: str


def submit_job(client, entrypoint: str, name: str, storage: str,
               working_dir: Path | None) -> Submitted:
    runtime_env: dict[str, Any] = {"env_vars": dict(JOB_ENV)}
    if working_dir is not None:
        runtime_env["working_dir"] = str(working_dir)
    job_id = call("submitting the job", client.submit_job, entrypoint=entrypoint,
                  runtime_env=runtime_env, metadata={"sweep": name, "storage": storage})
    return Submitted(job_id, name, storage)


def run_entrypoint() -> str:
    return f"python -m orchestrator run {SPEC_FILE} --address auto --stage-data"


def resume_entrypoint(name: str, storage: str) -> str:
    return (f"python -m orchestrator resume {shlex.quote(name)} --storage "
            f"{shlex.quote(storage)} --address auto")


TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def follow(client, job_id: str, write) -> int:
    """Stream the job's log through `write` until it ends; the sweep's exit code."""
    import asyncio

    async def tail() -> None:
        async for lines in client.tail_job_logs(job_id):
            write(lines)

    call(f"following job {job_id}", asyncio.run, tail(), retry_s=0)
    info = wait_until_done(client, job_id, timeout_s=60)
    return exit_code(info)


def wait_until_done(client, job_id: str, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    info = call(f"reading job {job_id}", client.get_job_info, job_id, retry_s=0)
    while str(info.status) not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        info = call(f"reading job {job_id}", client.get_job_info, job_id, retry_s=0)
    return info


def exit_code(info) -> int:
    """The sweep's own exit code when Ray knows it, else 0 or 1 by the job's status."""
    code = getattr(info, "driver_exit_code", None)
    if code is not None:
        return int(code)
    return 0 if str(info.status) == "SUCCEEDED" else 1


def job_rows(client) -> list[dict[str, Any]]:
    rows = []
    for job in call("listing jobs", client.list_jobs, retry_s=0):
        if not job.submission_id:
            continue  # drivers that were not submitted as jobs
        meta = job.metadata or {}
        rows.append({
            "job": job.submission_id, "sweep": meta.get("sweep", "-"),
            "status": str(job.status), "started": _when(job.start_time),
            "ended": _when(job.end_time), "exit": job.driver_exit_code
            if getattr(job, "driver_exit_code", None) is not None else "-",
            "entrypoint": job.entrypoint,
        })
    return sorted(rows, key=lambda r: r["started"])


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


# -- on the cluster ------------------------------------------------------------------

def stage_data(spec: SweepSpec) -> SweepSpec:
    """In a submitted job: copy the data files the job carried (under its working dir)
    into the sweep's shared storage, so trials on every node read the same file, and
    name them there. Content-addressed: a file staged before is not copied again."""
    import hashlib

    from orchestrator.results.atomic import write_atomic
    from orchestrator.spec import spec_from_mapping

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


SHARED_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "ceph", "glusterfs", "lustre", "gpfs",
                      "beegfs", "fuse", "9p", "virtiofs")


def filesystem_type(path: Path) -> str | None:
    """The type of the mount holding `path` (Linux /proc/mounts), or None."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return None
    path = path.expanduser().resolve()
    best = None
    for point, kind in mounts:
        if path.is_relative_to(point) and (best is None or len(point) > len(best[0])):
            best = (point, kind)
    return best[1] if best else None


def storage_warning(storage: str, nodes: int) -> str | None:
    """A warning when several nodes would write a sweep to a folder that is local to
    each of them (their trials' checkpoints would not be found elsewhere)."""
    if nodes < 2 or is_uri(storage):
        return None  # an object store is one store for every node
    kind = filesystem_type(Path(storage))
    if kind is None or kind.startswith(SHARED_FILESYSTEMS):
        return None
    return (f"warning: the cluster has {nodes} nodes, but storage {storage} is on a local "
            f"{kind} file system: every node must see the same folder (an NFS-like mount), "
            "or trials restored on another node will not find their checkpoints")
