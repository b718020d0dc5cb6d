"""The user's code travels with the sweep through Ray's runtime env.

The code folders are copied (what `spec.shipped_code` lets through: no secrets, nothing
outside the folder, no special files) into one
package, `sweep_code_<sweep name>/<index>/...`, that Ray uploads once and unpacks on
every node (`py_modules`); a trial puts each `<index>` folder on its sys.path
(`trainable.user_data.code_folders`). Nothing assumes a shared file system or a
PYTHONPATH, so a trial on another node, or in a job whose local folder is gone, imports
the same code. The package's name is the sweep's, so a resumed sweep ships under the
name its trials' restored configs carry.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestrator.spec import SweepSpec
from orchestrator.spec.shipped_code import code_digest, digest_of, shipped


def package_name(spec: SweepSpec) -> str | None:
    """The importable name the sweep's code travels under; None without user code."""
    if not spec.code:
        return None
    return "sweep_code_" + re.sub(r"\W", "_", spec.name)


def code_config(spec: SweepSpec) -> dict[str, Any]:
    """What a trial's config says of the code (`spec.settings.CodeConfig`)."""
    return {"package": package_name(spec), "folders": list(spec.code)}


def code_hash(spec: SweepSpec) -> str | None:
    """sha256 of the shipped code (recorded in sweep.json; resume compares it): the same
    files, places and bytes that `stage` writes."""
    return code_digest(list(spec.code), spec.code_exclude)[0] if spec.code else None


def stage(folders: list[str], into: Path, exclude: tuple[str, ...] = ()) -> str:
    """Write each folder's shipped files into `into/<index>/` (their bytes and whether
    they are executable: no link or special file travels); returns the sha256 of what
    it wrote."""
    def written() -> Iterator[tuple[str, bytes, bool]]:
        for place, data, executable in shipped(folders, exclude):
            target = into / place
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            if executable:
                target.chmod(target.stat().st_mode | 0o111)
            yield place, data, executable

    return digest_of(written())[0]


@contextlib.contextmanager
def runtime_env(spec: SweepSpec) -> Iterator[dict[str, Any] | None]:
    """The runtime env that ships the sweep's code (None without user code); the staged
    copy lives for the body of the `with` (Ray uploads it when it starts or joins)."""
    name = package_name(spec)
    if name is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="sweep-code-") as tmp:
        package = Path(tmp) / name
        package.mkdir()
        stage(list(spec.code), package, spec.code_exclude)
        yield {"py_modules": [str(package)]}
