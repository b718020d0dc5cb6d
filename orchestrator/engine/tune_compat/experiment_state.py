"""Tune's experiment state (`experiment_state-*.json`): trials the results tables record
as ended are marked TERMINATED in it before a resume."""

from __future__ import annotations

import json

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
