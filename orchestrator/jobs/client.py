"""Sweeps as Ray jobs: submit, follow, list and stop them through the Ray Jobs API.

A submitted job runs `sweep run` (or `sweep resume`) on the cluster's head with a
working_dir holding only what it needs (`orchestrator.jobs.staging`). Jobs are submitted
so that `ray job stop` / `sweep stop` sends SIGINT and waits, which lets Tune snapshot
the sweep for `sweep submit --resume`.

The Jobs API runs code for whoever reaches it: the client sends Ray's auth token on
every call and refuses to talk plain HTTP to another machine without one.
"""

from __future__ import annotations

import ipaddress
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from orchestrator.errors import ExitCode, OrchestratorError, RayUnavailable, first_line
from orchestrator.jobs.staging import SPEC_FILE
from orchestrator.ray_auth import auth_token

# Tune snapshots on SIGINT; the job supervisor waits this long before it kills
STOP_WAIT_S = 120
JOB_ENV = {"RAY_JOB_STOP_SIGNAL": "SIGINT", "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_WAIT_S)}


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
    from ray.job_submission import JobSubmissionClient

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return JobSubmissionClient(parsed.geturl(), headers=headers)
    except Exception as exc:  # connection refused, wrong token, not a Ray dashboard...
        if _refused_the_token(exc):
            raise RayUnavailable(_token_refused(address, exc, token)) from exc
        raise RayUnavailable(f"--address: the Ray Jobs API at {address} did not answer "
                             f"({first_line(exc)}); is the dashboard running and reachable (`ray "
                             "dashboard cluster.yaml` forwards it)?") from exc


def _refused_the_token(exc: BaseException) -> bool:
    """HTTP 401/403 from the Jobs API (Ray raises its AuthenticationError for them)."""
    return type(exc).__name__ == "AuthenticationError" or any(
        f"status code {code}" in str(exc) for code in (401, 403))


def _token_refused(address: str, exc: BaseException, token: str | None) -> str:
    which = "no token was sent" if token is None else "the token sent is not the cluster's"
    return (f"--address: the Ray Jobs API at {address} refused this client ({which}: "
            f"{first_line(exc)}); put the cluster's token in RAY_AUTH_TOKEN, the file named "
            "by RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token")


def call(what: str, fn, *args: Any, retry_s: float = 60.0, **kwargs: Any) -> Any:
    """A Jobs API call as one line on failure (exit 3). Right after a head starts, its
    job agent is not ready ("No available agent"): such calls are retried a while."""
    deadline = time.monotonic() + retry_s
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # the SDK raises RuntimeError, requests' errors, ...
            if "No available agent" in str(exc) and time.monotonic() < deadline:
                time.sleep(1.0)
                continue
            if _refused_the_token(exc):
                raise RayUnavailable(f"{what} failed: the Jobs API refused this client's "
                                     f"token ({first_line(exc)}); put the cluster's token "
                                     "in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                                     "~/.ray/auth_token") from exc
            raise RayUnavailable(f"{what} failed: {first_line(exc)}") from exc


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
    return ExitCode.OK if str(info.status) == "SUCCEEDED" else ExitCode.FAILED


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
