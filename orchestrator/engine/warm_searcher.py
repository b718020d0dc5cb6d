"""Optuna's TPE started warm (engine/warm_start.py): an earlier sweep's trials given to
the study as already evaluated, its best configurations run first.

Ray's OptunaSearch takes either `points_to_evaluate` with `evaluated_rewards` (all
registered as evaluated, none run) or without them (all run), not both; this sweep needs
both, so the known trials are added with the searcher's public `add_evaluated_point`
once Tune has given it the search space, and the re-runs are suggested first here, each
trial's result then added the same way. Only OptunaSearch's public methods are used; its
own save/restore (the whole object) keeps all of this across `sweep resume`.
"""

from __future__ import annotations

from typing import Any

from ray.tune.search.optuna import OptunaSearch
from ray.tune.utils import flatten_dict


def _flat(config: dict) -> dict[str, Any]:
    """A nested config as OptunaSearch names its parameters (Tune's own flattening)."""
    return flatten_dict(config, prevent_delimiter=True)


class WarmOptunaSearch(OptunaSearch):
    def __init__(self, *, history: list[tuple[dict, float]], reruns: list[dict], **kwargs):
        super().__init__(**kwargs)
        self.history = list(history)  # (config nested under `train`, metric)
        self.reruns = list(reruns)  # configs still to be suggested first, marked as re-runs
        self.rerun_trials: dict[str, dict] = {}  # trial id -> its configuration
        self.told: set[str] = set()  # re-runs whose result the study has
        self.given = 0  # known trials added to the study

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec) -> bool:
        if not super().set_search_properties(metric, mode, config, **spec):
            return False
        for point, value in self.history:
            self.add_evaluated_point(_flat(point), value)
        self.given = len(self.history)
        return True

    def suggest(self, trial_id: str) -> dict | None:
        if trial_id not in self.rerun_trials and self.reruns:
            self.rerun_trials[trial_id] = self.reruns.pop(0)
        if trial_id in self.rerun_trials:
            return self.rerun_trials[trial_id]
        return super().suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self.rerun_trials:  # a re-run is not a trial the study asked for
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        point = self.rerun_trials.get(trial_id)
        if point is None:
            super().on_trial_complete(trial_id, result, error)
            return
        value = (result or {}).get(self.metric)
        if trial_id not in self.told and not error and value is not None and value == value:
            self.add_evaluated_point(_flat({"train": point["train"]}), value)
        self.told.add(trial_id)
