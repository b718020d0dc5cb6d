"""What a connected cluster says about itself where Ray has no public answer: whether an
autoscaler may add nodes (its status in the GCS's key-value store), whether its GCS asks
for a token (the name of one of its gRPC methods)."""

from __future__ import annotations

import json


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
