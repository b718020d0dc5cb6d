"""Whether any node of the Ray this driver uses can hold one trial, checked before Tune.

Tune queues a trial that no node can hold and waits for it for good: `sweep run` sat at
"0 running" with no word (`resources: {cpu: 64}` on a 2-CPU machine). `validate` cannot
know the cluster; once Ray is up the driver can, from Ray's own view of its nodes.
"""

from __future__ import annotations

from orchestrator.errors import OrchestratorError, warn
from orchestrator.spec import SweepSpec

# spec key -> Ray's resource name
KEYS = {"cpu": "CPU", "gpu": "GPU"}


def _amount(value: float) -> str:
    return f"{value:g}"


def capacity_problem(asked: dict[str, float], nodes: list[dict[str, float]]) -> str | None:
    """Why no node among `nodes` (each Ray's resources of a live node) can hold a trial
    asking for `asked` (spec key -> amount), or None when one can."""
    asked = {key: amount for key, amount in asked.items() if amount > 0}
    if any(all(node.get(KEYS[key], 0) >= amount for key, amount in asked.items())
           for node in nodes):
        return None
    for key, amount in asked.items():  # one key alone that no node has enough of
        largest = max((node.get(KEYS[key], 0) for node in nodes), default=0)
        if largest < amount:
            where = (f"the largest node of this Ray has {_amount(largest)}"
                     if len(nodes) > 1 else f"this Ray's only node has {_amount(largest)}")
            return (f"resources.{key}: a trial asks for {_amount(amount)} {KEYS[key]}, but "
                    f"{where}; lower resources.{key}")
    have = "; ".join(", ".join(f"{_amount(node.get(KEYS[key], 0))} {KEYS[key]}"
                               for key in asked) for node in nodes)
    wants = " and ".join(f"{_amount(amount)} {KEYS[key]}" for key, amount in asked.items())
    return (f"resources: a trial asks for {wants} on one node, but no node has them together "
            f"(the nodes have: {have}); lower resources.cpu or resources.gpu")


def groups_at_once(nodes: list[dict[str, float]], resources) -> int:
    """Worker groups of `resources.workers` workers (each `cpu` CPUs, `gpu` GPUs: whole
    GPUs for a group) that Ray can hold at once on `nodes`, whether packed or spread."""
    slots = 0
    for node in nodes:
        fit = int(node.get("CPU", 0) / resources.cpu + 1e-4)
        if resources.gpu:
            fit = min(fit, int(node.get("GPU", 0) / resources.gpu + 1e-4))
        slots += fit
    return slots // resources.workers


def group_limit(spec: SweepSpec) -> int | None:
    """The trials of several workers that run at once: Tune does not see a worker group's
    resources (its trial, the group's driver, holds none), so without a limit it would
    start every trial and leave their groups queueing for Ray; Ray's guide for Tune with
    Train says to set max_concurrent_trials. None for one-worker trials (Tune counts them)
    and when the cluster holds no group (check_capacity says so)."""
    import ray

    if spec.resources.workers == 1:
        return spec.max_concurrent_trials
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    fit = groups_at_once(nodes, spec.resources)
    if not fit:
        return spec.max_concurrent_trials
    return min(fit, spec.max_concurrent_trials or fit)


def check_capacity(spec: SweepSpec, autoscaler: str | None) -> None:
    """One line, exit 2, when no live node of the connected Ray can hold one trial of
    `spec`; a warning instead when an autoscaler (`autoscaler` says which) may add a
    node that can."""
    import ray

    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    problem = capacity_problem({"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}, nodes)
    workers = spec.resources.workers
    if problem is None and workers > 1 and not groups_at_once(nodes, spec.resources):
        slots = groups_at_once(nodes, spec.resources.model_copy(update={"workers": 1}))
        problem = (f"resources.workers: a trial asks for {workers} workers of "
                   f"{spec.resources.cpu:g} CPU, {spec.resources.gpu:g} GPU, but this Ray "
                   f"holds {slots} such workers at once; lower resources.workers or "
                   "resources.cpu")
    if problem is None:
        return
    if autoscaler:
        warn(f"warning: {problem}; unless {autoscaler} adds a node that can hold one, no "
             "trial will start")
        return
    raise OrchestratorError(problem)
