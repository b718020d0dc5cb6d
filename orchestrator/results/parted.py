"""A result table written as what changed: a main Parquet file plus parts.

The sink writes a table many times while a sweep runs (after every few results, when
each trial ends). Rewriting the whole file each time costs what the sweep has
accumulated, so a sweep's table writes grow with the square of its rows. A
`PartedTable` writes the rows changed since its last write as a new part in its parts
folder, and rewrites the main file with every row only when the parts hold as many rows
as it does (each row is then rewritten a bounded number of times), when there are
`max_parts` of them, and when the sweep ends. Readers take the main file plus the parts,
the latest write of a key winning (`sweep_folder.read_parted`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from orchestrator.results.folder import parts_of
from orchestrator.results.storage import Location

# Parts at most before the main file is rewritten: bounds the files a reader opens.
MAX_PARTS = 256


class PartedTable:
    def __init__(self, main: Location, parts_dir: Location,
                 write_rows: Callable[[dict, Location], None], max_parts: int = MAX_PARTS):
        self.main, self.parts_dir = main, parts_dir
        self.write_rows = write_rows  # (rows by key, path): one whole, atomic file
        self.max_parts = max_parts  # 0: rewrite the main file at every write
        self.rows: dict[Hashable, dict] = {}
        self.pending: set[Hashable] = set()  # keys changed since the last write
        self.rewrite = False  # rows were removed, or old parts are to be folded in
        self.main_rows = self.parts_rows = self.parts = 0
        self.next_part = 1
        self.write_s = 0.0

    def load(self, rows: dict[Hashable, dict]) -> None:
        """The rows read back from the files (a resumed sweep); parts an earlier driver
        left are folded into the main file at the first write."""
        self.rows = dict(rows)
        self.main_rows = len(self.rows)
        self.rewrite = bool(parts_of(self.parts_dir))

    def put(self, key: Hashable, row: dict) -> None:
        self.rows[key] = row
        self.pending.add(key)

    def drop(self, keys) -> None:
        """Remove rows: parts cannot say so, so the next write rewrites the main file."""
        keys = set(keys) & self.rows.keys()
        for key in keys:
            del self.rows[key]
        self.pending -= keys
        self.rewrite = self.rewrite or bool(keys)

    def write(self) -> None:
        """Write what changed: a part, or the main file when it is time to fold."""
        if not (self.pending or self.rewrite):
            return
        if (self.rewrite or self.parts_rows + len(self.pending) >= self.main_rows
                or self.parts >= self.max_parts):
            self.write_whole()
        else:
            self._write_part()

    def finish(self, empty_too: bool = False) -> None:
        """The main file with every row and no parts left (the sweep's end); with
        `empty_too` the file is written even when it has no rows."""
        if self.parts or self.pending or self.rewrite or (not self.main_rows and empty_too):
            self.write_whole()

    def _write_part(self) -> None:
        started = time.perf_counter()
        part = self.parts_dir / f"part-{self.next_part:06d}.parquet"
        self.write_rows({key: self.rows[key] for key in self.pending}, part)
        self.next_part, self.parts = self.next_part + 1, self.parts + 1
        self.parts_rows += len(self.pending)
        self.pending.clear()
        self.write_s += time.perf_counter() - started

    def write_whole(self) -> None:
        """The main file with every row, then the parts it replaces are removed (a reader
        in between sees a row twice and keeps one)."""
        started = time.perf_counter()
        self.write_rows(self.rows, self.main)
        self.parts_dir.delete()
        self.main_rows, self.parts_rows, self.parts = len(self.rows), 0, 0
        self.pending.clear()
        self.rewrite = False
        self.write_s += time.perf_counter() - started
