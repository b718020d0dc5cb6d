"""Worker groups ended from the driver: the placement group of a trial of several workers
(trainable/distributed.py) is removed once Tune has ended or paused the trial.

Why here: Tune ends a trial's actor when it stops or pauses it, and the group's Ray Train
controller with it. When that happens while the trial's function waits for the group to
finish (a scheduler's stop at the last epoch, a pause), nothing in the trial gets to
remove the group's placement group; a non-detached placement group lives as long as the
job that made it (the sweep's driver), so the group's CPUs stayed reserved and every
later trial waited for them for ever. The trial names its group in each report
(`GROUP_PLACEMENT_KEY`); removing a group already gone does nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ray.tune import Callback

from orchestrator.spec.settings import GROUP_PLACEMENT_KEY

RUNNING = "RUNNING"  # Tune's status of a trial whose actor runs


def remove_group(placement_group_hex: str) -> None:
    """Remove the placement group with this hex id (nothing when it is gone already)."""
    import ray
    from ray.util import remove_placement_group
    from ray.util.placement_group import PlacementGroup

    group = PlacementGroup(ray.PlacementGroupID(bytes.fromhex(placement_group_hex)))
    with contextlib.suppress(Exception):  # removed already: the group ended first
        remove_placement_group(group)


class EndGroups(Callback):
    def __init__(self) -> None:
        self.groups: dict[str, str] = {}  # trial id -> its group's placement group (hex)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        named = result.get(GROUP_PLACEMENT_KEY)
        if named and self.groups.get(trial.trial_id) not in (None, named):
            remove_group(self.groups[trial.trial_id])  # an earlier group of the trial
        if named:
            self.groups[trial.trial_id] = named

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        # stopped, paused, ended or errored: its actor ends, its group with it
        if not self.groups:
            return
        for trial in trials:
            if trial.trial_id in self.groups and str(trial.status) != RUNNING:
                remove_group(self.groups.pop(trial.trial_id))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for named in self.groups.values():
            remove_group(named)
        self.groups.clear()

    def __getstate__(self) -> dict:
        return {"groups": {}}  # Tune pickles its callbacks: a restored driver starts afresh
