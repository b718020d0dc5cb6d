"""The embedded Ray's processes: in sessions of their own, without their unauthenticated
metrics ports (`ray._private.services.ConsolePopen`, the commands of Ray's dashboard
agent, autoscaler monitor and dashboard head); Ray's own start-up chatter; its temp dir."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

AGENT_COMMAND = "--dashboard_agent_command="  # how the raylet is told to start its agent
NO_METRICS = "--disable-metrics-collection"  # that agent's own flag (ray/dashboard/agent.py)
MONITOR_IP = "--monitor-ip="  # the autoscaler monitor serves metrics only when given one
MINIMAL = "--minimal"  # the dashboard head without its metrics (what Ray runs without
#                        the dashboard's dependencies)


def embedded_command(args: list[str]) -> list[str]:
    """A command `ray.init(address="local")` starts, without the metrics servers that
    answer anyone on all interfaces with no token: the dashboard agent's Prometheus port
    (random), the autoscaler monitor's (44217) and the dashboard head's (44227)."""
    args = [f"{arg} {NO_METRICS}" if arg.startswith(AGENT_COMMAND) and NO_METRICS not in arg
            else arg for arg in args]
    script = next((Path(arg).parts for arg in args if arg.endswith(".py")), ())
    if script[-1:] == ("monitor.py",) and "autoscaler" in script:  # v1's or v2's
        args = [arg for arg in args if not arg.startswith(MONITOR_IP)]
    if script[-2:] == ("dashboard", "dashboard.py") and MINIMAL not in args:
        args = [*args, MINIMAL]
    return args


@contextlib.contextmanager
def embedded_processes() -> Iterator[dict]:
    """Within the block, the processes `ray.init(address="local")` starts (GCS, raylet,
    log monitor, ...; the raylet then starts its agents and workers) begin sessions of
    their own, and the raylet's dashboard agent exports no metrics; yields the further
    keyword arguments for that `ray.init`.

    Sessions of their own: `timeout`, Slurm's scancel and systemd signal the driver's
    whole process group. Ray starts its processes in the driver's group and blocks only
    SIGINT in them (`services.start_ray_process`), so a SIGTERM to the group killed the
    GCS first and the driver, stopping gracefully, then waited 60 s for it and died with
    exit 1. Out of the group, they outlive the signal; the driver stops Tune and ends
    them itself (`ray.shutdown`). They still die with the driver when it is killed
    outright: on Linux Ray ties them to it with PR_SET_PDEATHSIG (kernel fate-sharing),
    which does not depend on the process group. Ray does the same on Windows, where it
    starts them in a new process group whenever kernel fate-sharing is available.

    No metrics: three of Ray's processes serve Prometheus metrics over plain HTTP with
    no token on 0.0.0.0 (on the loopback address only for a node whose own address is
    loopback, which `ray.init` cannot make it): the dashboard agent, the autoscaler
    monitor and the dashboard head (`embedded_command`). An embedded Ray has no
    dashboard and nobody scrapes it, and `ray.init` has no setting for them: their own
    flags are put in their commands, and Ray's processes are told not to collect
    metrics either (`_system_config`'s `enable_metrics_collection`), or the agent logs
    a warning for each metric it is sent and cannot export. What still listens on all
    interfaces is Ray's gRPC, which asks for the token (docs/cluster.md).

    The contact: `start_ray_process` makes every process through the module-level class
    `ray._private.services.ConsolePopen` (a `subprocess.Popen`); it is swapped for a
    subclass for the block only, in the one thread that starts Ray. A Ray without that
    name leaves its processes as Ray makes them (the old behaviour).
    """
    try:
        from ray._private import services
    except ImportError:  # pragma: no cover - a Ray that moved its services module
        yield {}
        return
    original = getattr(services, "ConsolePopen", None)
    if not (isinstance(original, type) and issubclass(original, subprocess.Popen)):
        yield {}  # pragma: no cover - a Ray that no longer starts them this way
        return

    class EmbeddedPopen(original):  # type: ignore[misc,valid-type]
        def __init__(self, args, *rest, **kwargs):
            kwargs.setdefault("start_new_session", True)
            if isinstance(args, list) and all(isinstance(arg, str) for arg in args):
                args = embedded_command(args)
            super().__init__(args, *rest, **kwargs)

    services.ConsolePopen = EmbeddedPopen
    try:
        yield {"_system_config": {"enable_metrics_collection": False}}
    finally:
        services.ConsolePopen = original




# the logger of Ray's announcement that it turned token auth on (every local start)
TOKEN_SETUP_LOGGER = "ray._private.authentication.authentication_token_setup"


def quiet_token_announcement() -> None:
    """Ray announces that it turned token auth on (its default, which README documents)
    on every start of a local instance: keep the newcomer's first screen clean. A Ray
    that renamed the logger shows its line again, nothing else."""
    import logging

    logging.getLogger(TOKEN_SETUP_LOGGER).setLevel(logging.ERROR)


def default_temp_dir() -> str:
    """Ray's default temp dir (where its sessions' folders are), as Ray computes it
    (`ray._common.utils.get_default_ray_temp_dir`: RAY_TMPDIR, else the system's)."""
    try:
        from ray._common.utils import get_default_ray_temp_dir
    except ImportError:  # pragma: no cover - a Ray that moved it: its documented default
        import os
        import tempfile

        return os.path.join(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir(), "ray")
    return get_default_ray_temp_dir()
