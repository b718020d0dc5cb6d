"""Start or join Ray for one command, and end what this command started.

Token authentication is left to Ray: a new local instance turns it on by itself and
writes `~/.ray/auth_token`; joining a cluster uses the token the user's environment
carries (`orchestrator.ray_auth`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator

from orchestrator.engine.tune_compat import (
    default_temp_dir,
    embedded_processes,
    quiet_token_announcement,
    refuses_without_token,
)
from orchestrator.errors import OrchestratorError, RayUnavailable, first_line
from orchestrator.ray_auth import auth_token, protect_token_file


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast with one line: Ray itself retries an unreachable address for minutes."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise OrchestratorError(f"--address: {address!r} is not HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise OrchestratorError(
            f"--address: nothing answers at {address} ({exc.strerror or exc}); "
            "is the Ray head running?"
        ) from None


def _refuse_without_token(address: str) -> None:
    """One line, before Ray's client tries: a cluster that asks for a token this process
    does not have (Ray's own client would retry for 20 s, a C++ warning each second)."""
    if address == "auto" or address.startswith("ray://") or auth_token() is not None:
        return
    if refuses_without_token(address):
        raise RayUnavailable(
            f"Ray refused this client at {address} (the cluster uses token authentication, "
            "and no token was found to send); put the cluster's token in RAY_AUTH_TOKEN, "
            "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token")


def _logs_folder() -> str | None:
    """The log folder of the Ray session this process started, or None when Ray made
    none. Not `session_latest`: on a shared machine that is whichever session started
    last, maybe another user's. Ray names a session it starts `session_<date>_<pid>`
    after the process that starts it (node.py), so ours is the newest of those."""
    from pathlib import Path

    ours = [p for p in Path(default_temp_dir()).glob(f"session_*_{os.getpid()}")
            if p.is_dir() and not p.is_symlink()]
    if not ours:
        return None
    return str(max(ours, key=lambda p: p.stat().st_mtime) / "logs")


def _first_line(exc: BaseException) -> str:
    """`Type: first line`, or the type alone for an exception without a message."""
    line = first_line(exc)
    return type(exc).__name__ if line == type(exc).__name__ else f"{type(exc).__name__}: {line}"


def _unavailable(exc: Exception, address: str | None) -> RayUnavailable:
    from ray.exceptions import AuthenticationError

    if isinstance(exc, AuthenticationError):
        return RayUnavailable(
            f"Ray refused this client at {address or 'the local instance'} ({_first_line(exc)}); "
            "put the cluster's token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
        )
    if address:
        return RayUnavailable(
            f"could not join the Ray cluster at {address} ({_first_line(exc)}); if it uses "
            "token authentication, check the token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
            "~/.ray/auth_token; run again with --debug for the traceback"
        )
    logs = _logs_folder()
    where = f"Ray's logs are in {logs}" if logs else "Ray started no session (no logs)"
    return RayUnavailable(
        f"could not start Ray ({_first_line(exc)}); {where}; run again with --debug for "
        "the traceback"
    )


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None,
                runtime_env: dict | None = None) -> Iterator[bool]:
    """Ray for the body of the `with`: joined at `address`, else an embedded local
    instance (ended afterwards), with `runtime_env` for every worker of this driver (the
    user's code). Reuses a connection this process already has (a test's Ray, whose
    workers then find the code in its folders on this machine). Yields True when this
    call started the connection."""
    if address:
        check_reachable(address)
        _refuse_without_token(address)
    import ray

    if ray.is_initialized():
        yield False
        return
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                     runtime_env=runtime_env)
        else:
            quiet_token_announcement()  # Ray's line that it turned token auth on
            # address="local": never attach silently to another cluster recorded on this
            # machine; no dashboard, so no Jobs API on an embedded instance. Its
            # processes outside the driver's process group (a signal to the group from
            # timeout, scancel or systemd reaches the driver alone, which stops
            # gracefully) and without an unauthenticated metrics port (tune_compat/)
            with embedded_processes() as options:
                ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                         logging_level=logging.WARNING, log_to_driver=False,
                         runtime_env=runtime_env, **options)
    except Exception as exc:  # Ray raises many kinds here; each becomes one line
        raise _unavailable(exc, address) from exc
    protect_token_file()
    try:
        yield True
    finally:
        ray.shutdown()


def gcs_address() -> str:
    """HOST:PORT of the GCS of the Ray this process is connected to."""
    import ray

    return ray.get_runtime_context().gcs_address
