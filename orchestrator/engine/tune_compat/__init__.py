"""The one seam between this project and Ray's private names: every use of a private
Ray or Tune name, every subclass of a Tune internal and every patch of Ray lives in this
package, each with why and what happens when a Ray release moves it; the rest of the
project calls the functions below (tests/test_seam.py keeps it so). Written against the
Ray releases in `TESTED_RAY` (pyproject.toml's bound on `ray`); importing the seam warns
once when the installed Ray is outside them.

- `processes`: the embedded Ray's processes in sessions of their own, without their
  unauthenticated metrics ports (`ray._private.services.ConsolePopen`); Ray's token-auth
  announcement kept off the screen; Ray's default temp dir (`ray._common.utils`).
- `cluster`: whether an autoscaler may add nodes to the connected cluster (the
  autoscaler's status in the GCS's key-value store); whether a cluster's GCS asks for a
  token (the name of one of its gRPC methods).
- `experiment_state`: trials the results tables record as ended are TERMINATED in Tune's
  experiment state before a resume, and the trials it holds (the JSON layout of
  `experiment_state-*.json`).
- `restored`: the RunConfig, searcher (in its concurrency limiter) and scheduler of a
  restored Tuner (`tuner._local_tuner`).
- `asha`: ASHA's rungs rebuilt from the history on resume (`_brackets`, `_rungs`).
- `hyperband`: `SettlingHyperBand`, Tune's synchronous HyperBand with its hangs mended
  (overrides `_process_bracket`; an older sweep's pickled scheduler swapped to it).
- `storage`: Tune's copies into a local storage made whole-or-absent
  (`ray.train._internal.storage._upload_to_fs_path`), and the loggers through which Tune
  reports a write the storage refused.

Upgrading Ray is this package's work: raise `TESTED_RAY` and pyproject.toml's bound
together after the tests that exercise each contact pass (tests/test_resume*.py,
tests/test_storage_faults.py, tests/test_sweeps.py, tests/test_cli.py, tests/test_seam.py).
"""

from __future__ import annotations

import warnings

from orchestrator.engine.tune_compat.asha import replay_history
from orchestrator.engine.tune_compat.cluster import autoscaler, refuses_without_token
from orchestrator.engine.tune_compat.experiment_state import mark_ended, trials_in_state
from orchestrator.engine.tune_compat.hyperband import SettlingHyperBand, settling
from orchestrator.engine.tune_compat.processes import (
    default_temp_dir,
    embedded_command,
    embedded_processes,
    quiet_token_announcement,
)
from orchestrator.engine.tune_compat.restored import Restored, restored
from orchestrator.engine.tune_compat.storage import (
    CONTROLLER_LOGGER,
    WRITER_LOGGERS,
    local_uploads,
)
from orchestrator.errors import SweepWarning

TESTED_RAY = ">=2.52,<2.61"  # the Ray releases this seam was tested with (pyproject.toml)

__all__ = [
    "CONTROLLER_LOGGER", "TESTED_RAY", "WRITER_LOGGERS", "Restored", "SettlingHyperBand",
    "autoscaler", "default_temp_dir", "embedded_command", "embedded_processes",
    "local_uploads", "mark_ended", "quiet_token_announcement", "ray_version_warning",
    "refuses_without_token", "replay_history", "restored", "settling", "trials_in_state",
]


def ray_version_warning(version: str) -> str | None:
    """What to say when Ray `version` is outside `TESTED_RAY`, or None when it is inside
    (or cannot be read)."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        if Version(version) in SpecifierSet(TESTED_RAY):
            return None
    except InvalidVersion:
        return None
    return (f"ray {version} is outside the releases this tool was tested with "
            f"(ray{TESTED_RAY}); its contacts with Ray's private names "
            "(orchestrator/engine/tune_compat/) may fail: install a tested release, e.g. "
            f"`pip install 'ray[default,tune]{TESTED_RAY}'`")


def _check_ray_version() -> None:
    """Warn once (this module is imported once) when the installed Ray is untested; read
    from the package's metadata, so that importing the seam does not import Ray."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        message = ray_version_warning(version("ray"))
    except PackageNotFoundError:  # pragma: no cover - Ray is a dependency
        return
    if message is not None:
        warnings.warn(message, SweepWarning, stacklevel=2)


_check_ray_version()
