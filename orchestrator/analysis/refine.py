"""`sweep refine`: the next spec, written from what a sweep's trials say.

The sweep's resolved spec (sweep.json) with its search space moved as the evidence says
(`analysis.evidence`: dead regions cut, narrowed around the good trials, widened past an
edge, choices dropped or added; log or linear as it was), the schedule's settings the
advice asks for (`analysis.advice`: ASHA's grace period, more epochs), a new name
(`<name>-r2`, then `-r3`...), a new seed (the same seed would draw the same points of a
space again), and `warm_start: {from: <name>}`. Every changed key carries its evidence as
a YAML comment. The result is validated as `sweep validate` would before it is returned;
a move the spec refuses is taken back, with why.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.analysis.advice import schedule_suggestions
from orchestrator.analysis.evidence import Evidence, evidence
from orchestrator.analysis.spec_yaml import spec_yaml
from orchestrator.errors import OrchestratorError, SpecError
from orchestrator.results.load import SweepTables
from orchestrator.results.storage import Location, is_uri, open_storage
from orchestrator.spec.model import safe_load, spec_from_mapping

# what each rule did, in the table's few words (the file's comments say it in full)
DONE = {"dead": "cut where all failed", "edge": "widened past the edge",
        "narrow": "narrowed around the best", "prune": "dropped a choice",
        "kept": "kept: the rate explains it", "rate": "scaled rate's limit",
        "limit": "cannot widen", "no_effect": "no measurable effect"}
SEED_LIMIT = 2**32


@dataclass(frozen=True)
class Change:
    key: str  # dotted: search_space.optimizer.lr, scheduler.grace_period, name, ...
    before: str
    after: str
    why: str  # a few words


@dataclass
class Refined:
    source: str  # the sweep it refines
    data: dict[str, Any]  # the next spec as plain data
    text: str  # ... as the YAML file, with its comments
    changes: list[Change]  # searched keys and schedule settings, changed or not
    evidence: Evidence
    taken_back: list[str] = field(default_factory=list)  # moves the spec refused, why

    @property
    def space_moved(self) -> bool:
        """Did the evidence change the search space?"""
        return any(c.before != c.after for c in self.changes
                   if c.key.startswith("search_space."))


def next_name(name: str) -> str:
    """`name-r2` from `name`, `name-r4` from `name-r3` (within the 128 characters a
    name may have)."""
    match = re.fullmatch(r"(.+)-r(\d+)", name)
    base, round_ = (match.group(1), int(match.group(2)) + 1) if match else (name, 2)
    suffix = f"-r{round_}"
    return base[:128 - len(suffix)] + suffix


def _dist(dist: dict) -> str:
    (kind, args), = dist.items()
    return f"{kind} [{', '.join(f'{a:g}' if isinstance(a, float) else str(a) for a in args)}]"


def source_storage(folder: Location, given: str | None) -> str:
    """The storage that holds the sweep in `folder`, as the next spec's warm start
    should name it: what --storage said (a folder made absolute), else the folder's."""
    if given:
        return given if is_uri(given) else str(Path(given).expanduser().resolve())
    return str(folder.parent)


def _same_storage(one: str, other: str) -> bool:
    if is_uri(one) or is_uri(other):
        return one.rstrip("/") == other.rstrip("/")
    return str(open_storage(one)) == str(open_storage(other))


def _code_relative(code: list[str], out_dir: Path) -> list[str]:
    """Code folders inside the new spec's folder written relative to it (read against
    the spec's folder, they travel with it); the others stay absolute."""
    base = out_dir.resolve()
    return [os.path.relpath(c, base) if Path(c).is_absolute() and Path(c).is_relative_to(base)
            else c for c in code]


def _apply(data: dict, key: str, value: Any) -> None:
    """Set a dotted key of the spec; a search_space key keeps its own dots."""
    if key.startswith("search_space."):
        data["search_space"][key.removeprefix("search_space.")] = value
        return
    section, _, leaf = key.partition(".")
    data[section][leaf] = value


def refine(tables: SweepTables, out: Path, num_samples: int | None = None,
           storage: str | None = None) -> Refined:
    """The next spec of the sweep in `tables`, to be written at `out`. `storage`: where
    the sweep was looked up (its warm start names it when it is not the spec's own)."""
    spec = tables.spec
    found = evidence(tables.trials, spec, tables.history)
    schedule = schedule_suggestions(tables.trials, spec)
    data = copy.deepcopy(spec)
    source = tables.folder.name
    data.pop("warm_start", None)
    data["name"] = next_name(spec["name"])
    data["seed"] = (int(spec.get("seed", 0)) + 1) % SEED_LIMIT
    if num_samples:
        data["num_samples"] = num_samples
    data["code"] = _code_relative(list(spec.get("code") or []), out.parent)
    warm: dict[str, Any] = {"from": source}
    held_in = source_storage(tables.folder, storage)
    if not _same_storage(held_in, str(spec.get("storage", "./sweeps"))):
        warm["storage"] = held_in
    # the spec's keys in their order, warm_start after the name
    data = {k: v for k, v in data.items() if k == "name"} | {"warm_start": warm} | \
        {k: v for k, v in data.items() if k != "name"}

    moves: dict[str, tuple[Any, Any, list[str], str]] = {}  # key -> before, after, why
    for key in found.keys:
        words = ", ".join(dict.fromkeys(DONE[c.rule] for c in key.claims)) or "no claim"
        moves[f"search_space.{key.key}"] = (key.before, key.after,
                                            [c.sentence for c in key.claims], words)
    for suggestion in schedule:
        if suggestion.value is not None:
            section, _, leaf = suggestion.key.partition(".")
            before = (spec.get(section) or {}).get(leaf)
            moves[suggestion.key] = (before, suggestion.value, [suggestion.sentence],
                                     "the advice")
    for key, (_, after, _, _) in moves.items():
        _apply(data, key, after)

    taken_back = _validated(data, moves, out, spec["name"])
    comments = _comments(spec, data, moves, source, num_samples)
    header = [f"Written by `sweep refine` from sweep {source} ({found.judged} of {found.total} "
              "trials ended without error). Each changed key says why above it; "
              "docs/iterate.md explains the rules."]
    text = spec_yaml(data, comments, header)
    if safe_load(text) != data:  # the comments are comments, never values
        raise OrchestratorError(f"{out}: the written spec would not read back as written")
    changes = [Change(key, _dist(b) if isinstance(b, dict) else str(b),
                      _dist(a) if isinstance(a, dict) else str(a), words)
               for key, (b, a, _, words) in moves.items()]
    return Refined(source, data, text, changes, found, taken_back)


def _validated(data: dict, moves: dict, out: Path, name: str) -> list[str]:
    """Validate `data` as `sweep validate` would read it from `out`; take back a move the
    spec refuses (its before restored in `moves` too) until it validates."""
    taken_back = []
    for _ in range(len(moves) + 1):
        try:
            spec_from_mapping(copy.deepcopy(data), str(out), out.parent)
            return taken_back
        except SpecError as err:
            key = next((k for k in moves if err.key == k or err.key.startswith(k + ".")),
                       None)
            if key is None or moves[key][0] == moves[key][1]:
                raise OrchestratorError(
                    f"sweep {name}: its recorded spec does not validate any more, so no next "
                    f"spec is written ({err.key}: {err.problem})") from None
            before, after, why, _ = moves[key]
            _apply(data, key, before)
            moves[key] = (before, before, [*why, f"kept: {err.problem}"], "kept: refused")
            taken_back.append(f"{key}: {err.problem}")
    raise OrchestratorError(f"sweep {name}: no valid next spec found")


def _comments(spec: dict, data: dict, moves: dict, source: str,
              num_samples: int | None) -> dict[tuple[str, ...], list[str]]:
    comments: dict[tuple[str, ...], list[str]] = {
        ("name",): [f"was {spec['name']}: the next round of it"],
        ("warm_start",): [
            f"the sweep this one refines: {source}. Its ended trials inside this search "
            "space are given to the searcher as evaluated and its best configuration is "
            "run first (docs/iterate.md#warm-start)"],
        ("seed",): [f"was {spec.get('seed', 0)}: a new seed, so that the samples are not "
                    "the last sweep's draws again"],
    }
    if num_samples and num_samples != spec.get("num_samples"):
        comments[("num_samples",)] = [f"was {spec.get('num_samples')} (--num-samples)"]
    for key, (before, after, why, _) in moves.items():
        path = tuple(key.split(".", 1)) if key.startswith("search_space.") else \
            tuple(key.split("."))
        if before != after:
            was = _dist(before) if isinstance(before, dict) else str(before)
            comments[path] = [f"was {was}:", *why]
        elif why:
            comments[path] = [f"kept: {w}" if not w.startswith("kept") else w for w in why]
    return comments
