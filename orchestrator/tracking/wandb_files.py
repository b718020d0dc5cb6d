"""What W&B's offline run files of a sweep hold: per run, the last history step and the
summary, read from each run's transaction log (`run-<id>.wandb`, the file `wandb sync`
uploads).

W&B resumes an offline run as a new run folder of the same id (a fragment); `wandb sync`
uploads a run's fragments in order. A driver that continues a sweep reads the fragments
back to send only what they lack. The log's format (LevelDB's log: 32 KiB blocks of
checksummed chunks, each record one of W&B's own protobuf `Record`s) is read here, the
records with W&B's classes; W&B 0.31 has no Python reader of its own (its `wandb leet
inspect` is the tests' independent check). A record cut by a killed writer ends the
read: W&B never flushed it, so it is not there."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)  # ident, magic, version 0
BLOCK, CHUNK_HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class UnreadableLog(ValueError):
    """Not a W&B transaction log this reader knows."""


def records(path: Path) -> Iterator[Any]:
    """The `wandb_internal_pb2.Record`s of one transaction log, in order, up to the
    first chunk that is cut or fails its checksum."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    if data[:len(HEADER)] != HEADER:
        raise UnreadableLog(f"{path}: not a W&B transaction log of version 0")
    pos, pending = len(HEADER), b""
    while True:
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEADER:  # a block's tail too short for a header is padding
            pos += left
        if pos + CHUNK_HEADER > len(data):
            return
        checksum, length, kind = struct.unpack_from("<IHB", data, pos)
        start = pos + CHUNK_HEADER
        chunk = data[start:start + length]
        if len(chunk) < length or zlib.crc32(bytes([kind]) + chunk) != checksum:
            return
        pos = start + length
        if kind == FULL:
            pending = chunk
        elif kind == FIRST:
            pending = chunk
            continue
        elif kind in (MIDDLE, LAST):
            pending += chunk
            if kind == MIDDLE:
                continue
        else:
            return
        record = wandb_internal_pb2.Record()
        record.ParseFromString(pending)
        yield record


@dataclass
class HeldRun:
    """What the fragments of one run hold."""

    run_id: str
    project: str
    entity: str
    last_step: int | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    fragments: int = 0


def held_runs(wandb_dir: Path, prefix: str, project: str) -> dict[str, HeldRun]:
    """The runs of `project` whose id starts with `prefix` under `wandb_dir` (W&B's
    `wandb/` folder), by run id: each fragment's history steps and summary updates, in
    the fragments' order (their folder names start with their start time)."""
    runs: dict[str, HeldRun] = {}
    for log in sorted(Path(wandb_dir).glob(f"offline-run-*/run-{prefix}*.wandb"),
                      key=lambda p: p.parent.name):
        run_id = log.stem.removeprefix("run-")
        run: HeldRun | None = None  # until the fragment's run record names its project
        for record in records(log):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                if record.run.project != project:  # another project's run of this id
                    break
                run = runs.setdefault(run_id, HeldRun(run_id, project, record.run.entity))
                run.fragments += 1
            elif run is None:  # the header, before the run record
                continue
            elif kind == "history":
                step = record.history.step.num
                run.last_step = step if run.last_step is None else max(run.last_step, step)
            elif kind == "summary":
                for item in record.summary.update:
                    key = item.key or ".".join(item.nested_key)
                    run.summary[key] = json.loads(item.value_json)
                for item in record.summary.remove:
                    run.summary.pop(item.key or ".".join(item.nested_key), None)
    return runs
