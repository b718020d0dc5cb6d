"""`sweep extend`: N more trials in a finished sweep, in its own folder and tables.

The sweep's searcher goes on from every trial that ended, rather than starting a fresh
random stream that draws the first configurations again: Optuna's TPE is given them as
evaluated (the warm start's `WarmOptunaSearch`, with nothing run again), and a random
search draws N configurations none of its trials ran, from a seed of its own for each
extension. ASHA is given the earlier trials' rungs, so the new trials are cut against
the whole sweep. The new trials run in a new Tune experiment in the same folder (new
trial ids, a segment `extend` in sweep.json); the sink writes them into the same tables.
A killed extend is continued by `sweep resume` from that experiment's state: the
trials the tables held before it (`extensions[].trials_before` in sweep.json) are not
its trials, so a resume never takes them for trials its snapshot lost.

Grids are not extended: a grid's samples are repeats of the same configurations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from orchestrator.engine.run import SweepOutcome, build_tuner, drive, resume_command, track_command
from orchestrator.engine.warm_start import native, nested, select
from orchestrator.errors import OrchestratorError
from orchestrator.results import schema
from orchestrator.results.folder import read_sweep_json, sweep_json_path
from orchestrator.results.lease import refuse_if_held
from orchestrator.results.provenance import now
from orchestrator.results.storage import Location, check_writable, open_storage
from orchestrator.spec import SweepSpec, spec_from_mapping
from orchestrator.states import SweepStatus

EXTENSIONS_KEY = "extensions"  # sweep.json: one record per extension
DRAWS_PER_TRIAL = 1000  # a random search's tries for each new configuration


@dataclass(frozen=True)
class ExtendPlan:
    """What `sweep extend` read, before Ray starts."""

    folder: Location
    spec: SweepSpec  # the sweep's spec with num_samples raised by `added` (sweep.json's now)
    added: int
    seed: int  # the new trials' searcher seed
    trials: pd.DataFrame  # the tables as they were
    history: pd.DataFrame
    known: tuple  # (config nested under `train`, metric) of ended trials, for TPE
    points: tuple  # a random search's new configurations, nested under `train`
    rows: tuple  # (trial_id, epoch, metric) of every epoch: ASHA's rungs
    extensions: tuple  # sweep.json's extension records, this one last
    lost: frozenset[str] = frozenset()  # rows of an unsaved extension's trials: they go

    @property
    def tuner_spec(self) -> SweepSpec:
        """The spec the new Tuner draws its trials from: `added` samples, in the sweep's
        folder where it is now (a folder moved or copied since it ran: Tune's experiment
        goes where the tables are, not where sweep.json's storage says it was)."""
        update: dict[str, Any] = {"num_samples": self.added}
        if self.folder.local is not None:
            update.update(storage=str(self.folder.local.parent), name=self.folder.name)
        return self.spec.model_copy(update=update)

    @property
    def stop_reasons(self) -> dict[str, str]:
        """The earlier trials that ended, and why: their rows are final (the sink takes
        no more of them) and the progress view counts them."""
        if not len(self.trials):
            return {}
        done = self.trials[self.trials[schema.STOP_REASON].notna()]
        return dict(zip(done[schema.TRIAL_ID], done[schema.STOP_REASON]))

    def summary(self) -> str:
        how = (f"{len(self.known)} ended trials given to its Optuna searcher as evaluated"
               if self.spec.searcher.name == "optuna" else
               f"{self.added} random configurations none of its {len(self.trials)} trials ran")
        return (f"extending {self.folder}: {self.added} more trials (seed {self.seed}; {how})")


def extension_seed(seed: int, index: int) -> int:
    """The searcher seed of a sweep's `index`-th extension (1, 2, ...): its own stream,
    the same each time it is planned."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] % (2**31 - 1))


def _config_key(values: dict[str, Any]) -> str:
    return json.dumps({k: native(v) for k, v in values.items()}, sort_keys=True, default=str)


def _draw(spec: SweepSpec, seed: int, ran: set[str], count: int) -> list[dict[str, Any]]:
    """`count` configurations of the search space (dotted keys) that are not in `ran` nor
    drawn twice; fewer when the space holds no more."""
    from orchestrator.engine.space import to_domain

    domains = {key: to_domain(dist) for key, dist in spec.search_space.items()}
    rng = np.random.RandomState(seed)
    drawn: list[dict[str, Any]] = []
    seen = set(ran)
    for _ in range(DRAWS_PER_TRIAL * count):
        if len(drawn) == count:
            break
        values = {key: native(domain.sample(random_state=rng))
                  for key, domain in domains.items()}
        key = _config_key(values)
        if key not in seen:
            seen.add(key)
            drawn.append(values)
    return drawn


def unsaved_extension(folder: Location, data: dict) -> bool:
    """Whether the sweep's last extension left no experiment state of its own: its
    driver died after sweep.json recorded it and before Tune's first save (Tune saves
    at its first step, before a trial starts), so Tune's newest state is the one before
    it and a resume must start the extension again rather than restore that one."""
    from orchestrator.engine.tune_compat import trials_in_state

    extensions = data.get(EXTENSIONS_KEY) or []
    if not extensions or data.get("status") == SweepStatus.FINISHED:
        return False
    known = trials_in_state(folder)
    return known is not None and known <= set(extensions[-1].get("trials_before", []))


def plan_extend(folder: Location, added: int, again: bool = False) -> ExtendPlan:
    """Check that the sweep in `folder` can take `added` more trials and choose them;
    bad input is one line (exit 2), before Ray starts. `again`: the same choice of the
    sweep's last extension, which never got to run (`unsaved_extension`)."""
    from orchestrator.results.load import load_sweep
    from orchestrator.results.rows import config_columns

    data = read_sweep_json(folder)
    spec = spec_from_mapping(data["spec"], str(sweep_json_path(folder)))
    status = data.get("status")
    extensions = list(data.get(EXTENSIONS_KEY) or [])
    if again:  # sweep.json holds its record and the raised spec already
        record = extensions.pop()
        added = int(record["num_samples"])
        spec = spec.model_copy(update={"num_samples": spec.num_samples - added})
    elif status != SweepStatus.FINISHED:
        raise OrchestratorError(
            f"{folder}: the sweep is {status or 'not started'}, not finished: continue it "
            f"with `{resume_command(folder, spec)}`, then extend it")
    if folder.local is None and str(folder) != str(open_storage(spec.storage) / spec.name):
        raise OrchestratorError(
            f"{folder}: the sweep ran in {spec.storage} as {spec.name!r}: extend it there, "
            f"as `sweep extend {spec.name} --storage '{spec.storage}'`")
    grids = [k for k, d in spec.search_space.items() if d.kind == "grid"]
    if spec.searcher.name == "grid" or grids:
        raise OrchestratorError(
            f"{sweep_json_path(folder)}: search_space: {', '.join(grids) or 'the grid'} is a "
            "grid, whose samples repeat the same configurations: extend adds trials to a "
            "random or Optuna search; run the grid again with more samples instead "
            "(`sweep run SPEC --num-samples N`)")
    tables = load_sweep(folder)
    trials, history = tables.trials, tables.history
    lost: frozenset[str] = frozenset()
    if again and len(trials):  # rows of its trials, should any have come before Tune's save
        before = set(record.get("trials_before", []))
        lost = frozenset(set(trials[schema.TRIAL_ID]) - before)
        trials = trials[trials[schema.TRIAL_ID].isin(before)]
        history = history[history[schema.TRIAL_ID].isin(before)]
    seed = extension_seed(spec.seed, len(extensions) + 1)
    known: list = []
    points: list = []
    if spec.searcher.name == "optuna":
        fixed = {k: native(v) for k, v in
                 config_columns({"train": spec.train.model_dump(mode="json")}).items()}
        found, _, _ = select(trials, spec.search_space, fixed, spec.search_space,
                             spec.metric, spec.mode, rerun_best=0)
        known = [(nested(k.values), k.value) for k in found]
    else:
        ran = {_config_key({key: row.get(schema.CONFIG_PREFIX + key)
                            for key in spec.search_space})
               for row in trials.to_dict("records")}
        draws = _draw(spec, seed, ran, added)
        if len(draws) < added:
            raise OrchestratorError(
                f"--num-samples: the search space holds {len(draws)} configurations that "
                f"none of the sweep's {len(trials)} trials ran, not {added}: extend by at "
                "most that many, or widen the space (`sweep refine` writes a new sweep)")
        points = [nested(values) for values in draws]
    rows = []
    if len(history) and spec.metric in history:
        for row in history[[schema.TRIAL_ID, "epoch", spec.metric]].itertuples(index=False):
            rows.append((row[0], int(row[1]), float(row[2])))
    if not again:
        record = {"at": now(), "num_samples": added, "seed": seed,
                  "given_to_searcher": len(known),
                  "trials_before": sorted(trials[schema.TRIAL_ID]) if len(trials) else []}
    raised = spec.model_copy(update={"num_samples": spec.num_samples + added})
    return ExtendPlan(folder, raised, added, seed, trials, history, tuple(known),
                      tuple(points), tuple(rows), tuple(extensions + [record]), lost)


def extend_sweep(plan: ExtendPlan, *, address: str | None = None,
                 callbacks: list | None = None, command: str = "extend") -> SweepOutcome:
    """Run the plan's new trials to their end in the sweep's folder and tables (`command`
    `resume`: an extension started again, sweep.json holding it already)."""
    from orchestrator.tracking.setup import check_reachable

    check_writable(plan.folder)
    refuse_if_held(plan.folder)  # fast, before Ray starts; the lease is taken once it runs
    check_reachable(plan.spec.tracking, track_command(plan.folder, plan.spec))
    count = len(plan.extensions) - (command == "extend")

    def unchanged() -> None:  # under the lease: nobody extended or resumed it meanwhile
        data = read_sweep_json(plan.folder)
        finished = data.get("status") == SweepStatus.FINISHED
        if finished != (command == "extend") or \
                len(data.get(EXTENSIONS_KEY) or []) != count:
            raise OrchestratorError(
                f"{plan.folder}: the sweep changed since this extend read it (another "
                "driver ran it): see `sweep ls`, then extend again")

    return drive(plan.spec, plan.folder,
                 lambda cbs: build_tuner(plan.tuner_spec, cbs, extension=plan),
                 command=command, address=address, callbacks=callbacks,
                 ended=frozenset(plan.stop_reasons),
                 before=plan.trials, may_write=unchanged, lost=plan.lost,
                 record={EXTENSIONS_KEY: list(plan.extensions)})
