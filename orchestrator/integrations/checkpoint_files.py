"""A framework's checkpoint as the bytes a trial keeps, and back as the file or folder
the framework resumes from. The restored copy lives in a temporary folder that goes
with the callback holding it."""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
import weakref
from pathlib import Path


def restored_folder(owner: object) -> Path:
    """A fresh temporary folder, removed when `owner` is garbage-collected (or the
    process exits)."""
    folder = Path(tempfile.mkdtemp(prefix="sweep-restored-"))
    weakref.finalize(owner, shutil.rmtree, folder, ignore_errors=True)
    return folder


def pack(folder: Path) -> bytes:
    """A checkpoint folder as one uncompressed tar (model weights do not compress)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=folder.name)
    return buffer.getvalue()


def unpack(data: bytes, into: Path) -> Path:
    """The folder `pack` made, under `into`; its path."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        names = {Path(m.name).parts[0] for m in tar.getmembers()}
        if len(names) != 1:
            raise ValueError(f"a packed checkpoint holds one folder, not {sorted(names)}")
        # the "data" filter refuses links out of the folder, absolute paths and devices
        tar.extractall(into, filter="data")
    return into / names.pop()
