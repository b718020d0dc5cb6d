"""Where this project touches Ray's private names: each contact here, with why and what
happens when a Ray release moves it (issue #28 gathers every such contact into this
module). Written against Ray 2.60; each contact checks that its name is still there and
falls back to Ray's own behaviour when it is not.

- `embedded_processes()`: the embedded Ray's processes in sessions of their own, and
  without their unauthenticated metrics ports (`ray._private.services.ConsolePopen`,
  the commands of Ray's dashboard agent, autoscaler monitor and dashboard head).
- `autoscaler()`: whether an autoscaler may add nodes to the connected cluster (the
  autoscaler's status in the GCS's key-value store).
- `refuses_without_token()`: whether a cluster's GCS asks for a token (the name of one
  of its gRPC methods).
- `mark_ended()`: trials the results tables record as ended are TERMINATED in Tune's
  experiment state before a resume (the JSON layout of `experiment_state-*.json`).
"""

from __future__ import annotations

import contextlib
import json
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


def autoscaler() -> str | None:
    """Which autoscaler may add nodes to the cluster this process is connected to (words
    for a message), or None when none can.

    Ray has no public answer. Its autoscaler (v1) writes its status into the GCS's
    key-value store (`ray._private.ray_constants.DEBUG_AUTOSCALING_STATUS`, read with
    `ray.experimental.internal_kv._internal_kv_get`): none for an embedded Ray; for a
    cluster started by hand (`ray start`) a read-only one whose node types merely
    mirror the live nodes (`node_<node id>`); node types of a cluster config otherwise.
    Autoscaler v2 (KubeRay) marks itself with a key of its own (`is_autoscaler_v2`).
    When those names are gone, the answer is "maybe": a warning, never a refusal of a
    cluster that could grow.
    """
    maybe = "an autoscaler, if this cluster has one,"
    try:
        from ray._private.ray_constants import DEBUG_AUTOSCALING_STATUS
        from ray.autoscaler.v2.utils import is_autoscaler_v2
        from ray.experimental.internal_kv import _internal_kv_get

        if is_autoscaler_v2(fetch_from_server=True):
            return "Ray's autoscaler (v2)"
        status = _internal_kv_get(DEBUG_AUTOSCALING_STATUS)
    except Exception:  # noqa: BLE001 - any change of those names means "cannot tell"
        return maybe
    if not status:
        return None  # no autoscaler runs (an embedded Ray, or one started by ray.init)
    try:
        report = json.loads(status).get("autoscaler_report") or {}
    except (ValueError, AttributeError):
        return maybe
    types = set((report.get("node_type_mapping") or {}).values())
    types |= set(report.get("active_nodes") or {}) | set(report.get("pending_launches") or {})
    if not types:
        return maybe
    if all(name.startswith("node_") for name in types):
        return None  # read-only: a cluster started by hand, whose nodes come by hand
    return "Ray's autoscaler"


# the first call Ray's own client makes to a GCS (ray/core/generated/gcs_service_pb2_grpc)
CLUSTER_ID_METHOD = "/ray.rpc.NodeInfoGcsService/GetClusterId"


def refuses_without_token(address: str, timeout_s: float = 5.0) -> bool:
    """Whether the GCS at HOST:PORT refuses a client that sends no token.

    Ray's client without a token (no RAY_AUTH_TOKEN, no token file: token auth off on
    this side) retries a cluster that asks for one for 20 s, printing a warning from C++
    each second, and then fails with a ConnectionError that does not say why. One call
    of the GCS's own first method, with an empty request and no token, answers
    UNAUTHENTICATED at once. A Ray that renamed the method answers UNIMPLEMENTED: then
    False, and Ray's own retries (the old behaviour) follow.
    """
    import grpc

    with grpc.insecure_channel(address) as channel:
        try:
            channel.unary_unary(CLUSTER_ID_METHOD)(b"", timeout=timeout_s)
        except grpc.RpcError as exc:
            return exc.code() == grpc.StatusCode.UNAUTHENTICATED
    return False


ENDED = "TERMINATED"  # Tune's name of a trial's status that a resume skips


def mark_ended(folder, trial_ids: frozenset[str]) -> list[str]:
    """Mark `trial_ids` TERMINATED in the newest of Tune's experiment states in `folder`
    (a results.storage Location), the one `Tuner.restore` reads; returns those changed.

    Why: Tune snapshots its experiment state every few seconds, but deletes a trial's
    older checkpoints (all but the newest CheckpointConfig.num_to_keep) at once. A
    driver killed between a trial's end and the next snapshot leaves a state in which
    that trial still runs, from a checkpoint already deleted: Tune then restores it,
    Ray's Trainable.restore fails ("Could not recover from checkpoint as it does not
    exist on storage anymore", a traceback per trial) and the trial counts as errored,
    though the results tables recorded its end (seen with HyperBand, which checkpoints
    every epoch). A trial that ended is not to be run again, so Tune is told so.

    The contact: the state is JSON; `trial_data` holds one [trial, run metadata] pair
    per trial, the trial a JSON string whose `status` is Tune's name of it. Anything
    else in that file is left as it is. A state of another shape is left untouched
    (then Ray's restore runs those trials again, and `stoppers.StopEnded` stops them at
    their first report, as before).
    """
    from orchestrator.results.folder import tune_states

    states = tune_states(folder)
    if not states or not trial_ids:
        return []
    try:
        state = json.loads(states[-1].read_text())
        pairs = state["trial_data"]
        changed = []
        for pair in pairs:
            trial = json.loads(pair[0])
            if trial.get("trial_id") in trial_ids and trial.get("status") != ENDED:
                trial["status"] = ENDED
                pair[0] = json.dumps(trial)
                changed.append(trial["trial_id"])
    except (ValueError, KeyError, TypeError, IndexError):
        return []
    if changed:
        states[-1].write_text(json.dumps(state))  # whole or not at all (Location)
    return changed


def trials_in_state(folder) -> frozenset[str] | None:
    """The trial ids in the newest of Tune's experiment states in `folder` (the one
    `Tuner.restore` reads); None when there is none or it has another shape. The contract
    as for `mark_ended`."""
    from orchestrator.results.folder import tune_states

    states = tune_states(folder)
    if not states:
        return None
    try:
        return frozenset(json.loads(pair[0])["trial_id"]
                         for pair in json.loads(states[-1].read_text())["trial_data"])
    except (ValueError, KeyError, TypeError, IndexError):
        return None
