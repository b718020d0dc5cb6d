"""Tune's copies of its driver's folders into the storage (its experiment state, the
searcher's, trial folders' result files), and the loggers through which Tune reports a
write the storage refused and goes on."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.fs as pafs

# Tune's loggers that report a write of the storage it failed, and then go on
WRITER_LOGGERS = ("ray.tune.execution.experiment_state", "ray.train._internal.syncer",
                  "ray.tune.tune", "ray.tune.execution.tune_controller",
                  "ray.tune.analysis.experiment_analysis")
CONTROLLER_LOGGER = "ray.tune.execution.tune_controller"  # also logs trials' own failures


@contextlib.contextmanager
def local_uploads(copy_tree: Callable[[Path, Path], None]) -> Iterator[None]:
    """For the body of the `with`, Tune's driver copies a folder into a local storage with
    `copy_tree(source, destination)` instead of pyarrow's copy_files. This replaces Ray
    2.60's `ray.train._internal.storage._upload_to_fs_path` (what its syncer calls);
    tests/test_storage_faults.py checks that Tune still calls it."""
    from ray.train._internal import storage as tune_storage

    original = tune_storage._upload_to_fs_path

    def upload(local_path: str, fs: pafs.FileSystem, fs_path: str,
               exclude: list | None = None) -> None:
        if exclude or not isinstance(fs, pafs.LocalFileSystem) or not os.path.isdir(local_path):
            return original(local_path, fs, fs_path, exclude)
        copy_tree(Path(local_path), Path(fs_path))

    tune_storage._upload_to_fs_path = upload
    try:
        yield
    finally:
        tune_storage._upload_to_fs_path = original
