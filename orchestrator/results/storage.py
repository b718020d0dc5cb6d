"""Where sweeps are kept: a local (or NFS-like) folder, or an object store URI such as
`s3://bucket/sweeps?endpoint_override=127.0.0.1:9000&scheme=http` (pyarrow's
filesystems, the same that Ray Tune's `storage_filesystem` takes).

`Location` is a path on one filesystem with the few operations the tool needs. Writes
are whole-file and atomic: a temp file and a rename on a local filesystem, one PUT on
an object store (an object is never seen half-written).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from orchestrator.errors import (
    OrchestratorError,
    StorageFailed,
    first_line,
    storage_problem,
    strerror,
)
from orchestrator.spec.credentials import refuse_storage_credentials


def is_uri(storage: str) -> bool:
    return "://" in storage


@dataclass(frozen=True)
class Location:
    fs: pafs.FileSystem
    path: str  # the path on `fs` (for an object store: bucket/key, no scheme)
    scheme: str = ""  # "s3", "gs", ... for display; "" on the local filesystem

    # -- naming ----------------------------------------------------------------------
    @property
    def local(self) -> Path | None:
        """The local path, or None on an object store."""
        return Path(self.path) if isinstance(self.fs, pafs.LocalFileSystem) else None

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> Location:
        return Location(self.fs, self.path.rstrip("/").rsplit("/", 1)[0], self.scheme)

    def __truediv__(self, part: str) -> Location:
        return Location(self.fs, f"{self.path.rstrip('/')}/{part}", self.scheme)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.path}" if self.scheme else self.path

    # -- reading -----------------------------------------------------------------------
    def _info(self) -> pafs.FileInfo:
        return self.fs.get_file_info(self.path)

    def exists(self) -> bool:
        return self._info().type != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self._info().type == pafs.FileType.File

    def is_dir(self) -> bool:
        return self._info().type == pafs.FileType.Directory

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as stream:
            return stream.readall()

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def children(self) -> list[Location]:
        """What the folder holds (one level), sorted by name; nothing if it is absent."""
        if not self.is_dir():
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        return sorted((Location(self.fs, i.path, self.scheme) for i in infos),
                      key=lambda loc: loc.name)

    # -- writing -----------------------------------------------------------------------
    def write_bytes(self, data: bytes) -> None:
        if self.local is not None:
            from orchestrator.results.atomic import write_atomic

            write_atomic(self.local, lambda tmp: tmp.write_bytes(data))
            return
        try:
            with self.fs.open_output_stream(self.path) as stream:  # one PUT: whole or absent
                stream.write(data)
        except OSError as exc:  # no such bucket, no permission, no network...
            raise OrchestratorError(f"storage: cannot write {self} ({first_line(exc)})") from None

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def delete(self) -> None:
        if self.is_dir():
            self.fs.delete_dir(self.path)

    def tune_storage(self) -> tuple[str, pafs.FileSystem | None]:
        """(storage_path, storage_filesystem) for Ray Tune's RunConfig / Tuner.restore."""
        if self.local is not None:
            return str(self.local), None
        return self.path, self.fs


def check_writable(folder: Location) -> None:
    """Before Ray starts: the local folder a sweep will write (or, while it is absent,
    the nearest folder above it, where it will be made) takes a small file, removed at
    once; else one line, exit 4 (full, read-only, no permission, under a file). An
    object store is left to its first write."""
    if folder.local is None:
        return
    base = next(p for p in (folder.local, *folder.local.parents) if p.exists())
    why = None if base.is_dir() else (f"{base} is a file, not a folder" if base.is_file() else
                                      f"{base} is not a folder")
    if why is None:
        probe = base / f".sweep-probe-{os.getpid()}"
        try:
            try:
                probe.write_bytes(b"probe" * 820)  # a few KiB: a full disk refuses them
            finally:
                probe.unlink(missing_ok=True)
        except OSError as exc:  # full, read-only, no permission; or a folder that takes
            # no files at all (/proc: "No such file or directory")
            why = strerror(storage_problem(exc) or exc)
    if why is not None:
        raise StorageFailed(f"storage: cannot write {folder} ({why}); nothing was started: "
                            "make room or make it writable, then run the command again")


def open_storage(storage: str, option: str = "storage") -> Location:
    """The storage a spec or an option names: a folder (made absolute) or a URI; a URI
    with credentials in it, or one pyarrow cannot open, is one line naming `option`."""
    if not is_uri(storage):
        return Location(pafs.LocalFileSystem(), str(Path(storage).expanduser().resolve()))
    refuse_storage_credentials(storage, option)
    try:
        fs, path = pafs.FileSystem.from_uri(storage)
    except (pa.ArrowInvalid, ValueError, OSError) as exc:  # pyarrow's kinds for bad URIs
        raise OrchestratorError(f"{option}: {storage!r} is not a storage URI pyarrow can "
                                f"open ({first_line(exc)})") from None
    return Location(fs, path.rstrip("/"), storage.split("://", 1)[0])


def is_dir_at(folder: Location, option: str) -> bool:
    """`folder.is_dir()`, where a store that does not answer (no network, no credentials,
    no such endpoint) is one line naming `option` instead of pyarrow's traceback."""
    try:
        return folder.is_dir()
    except OSError as exc:
        raise OrchestratorError(f"{option}: cannot reach {folder} ({first_line(exc)})") from None


def as_location(where: Location | str | Path) -> Location:
    """A Location as is; a local path (str or Path) as a Location on the local disk."""
    if isinstance(where, Location):
        return where
    if isinstance(where, str) and is_uri(where):
        return open_storage(where)
    return Location(pafs.LocalFileSystem(), str(Path(where).expanduser().resolve()))


# -- is a folder shared by every node? ------------------------------------------------

SHARED_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "ceph", "glusterfs", "lustre", "gpfs",
                      "beegfs", "fuse", "9p", "virtiofs")


def filesystem_type(path: Path) -> str | None:
    """The type of the mount holding `path` (Linux /proc/mounts), or None."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return None
    path = path.expanduser().resolve()
    best = None
    for point, kind in mounts:
        if path.is_relative_to(point) and (best is None or len(point) > len(best[0])):
            best = (point, kind)
    return best[1] if best else None


def storage_warning(storage: str, nodes: int) -> str | None:
    """A warning when several nodes would write a sweep to a folder that is local to
    each of them (their trials' checkpoints would not be found elsewhere)."""
    if nodes < 2 or is_uri(storage):
        return None  # an object store is one store for every node
    kind = filesystem_type(Path(storage))
    if kind is None or kind.startswith(SHARED_FILESYSTEMS):
        return None
    return (f"warning: the cluster has {nodes} nodes, but storage {storage} is on a local "
            f"{kind} file system: every node must see the same folder (an NFS-like mount), "
            "or trials restored on another node will not find their checkpoints")
