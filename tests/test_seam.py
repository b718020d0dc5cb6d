"""Every use of a private Ray or Tune name lives in one seam, orchestrator/engine/
tune_compat/: an upgrade of Ray is that package's work. This test reads every other
module and fails on a private Ray name in it, and checks the seam's tested range of Ray
against pyproject.toml's bound."""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "orchestrator"
SEAM = PACKAGE / "engine" / "tune_compat"
# a private module or name of Ray in any text (an import, a logger's name, a docstring)
PRIVATE_TEXT = re.compile(r"\bray\._|\._private\b|\._internal\b|\._local_tuner|\._brackets"
                          r"|\._rungs\b|_process_bracket|\._tune_config|_upload_to_fs_path")
# private names of other libraries this project uses outside the seam, and why
NOT_RAY = {
    "_exit": "os._exit: the GCS watch ends a driver whose Ray is gone",
    "_foreach_norm": "torch._foreach_norm: the gradient norm in one kernel",
    "_parameters": "torch.nn.Module._parameters: a module's own parameters",
}


def outside_seam() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if SEAM not in p.parents]


def own_names(paths: list[Path]) -> set[str]:
    """Every name this project's code defines (functions, classes, attributes it sets,
    variables, arguments): a private attribute by one of these names is ours."""
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return names


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _ray_names(tree: ast.AST) -> dict[str, str]:
    """The names a module binds to a class of Ray's (`from ray.tune import X`), with the
    module each comes from."""
    return {a.asname or a.name: node.module for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ray"
            for a in node.names}


def _ray_base(cls: ast.ClassDef, ray_names: dict[str, str]) -> type | None:
    """The class of Ray's that `cls` subclasses, if one does."""
    import importlib

    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in ray_names:
            found = getattr(importlib.import_module(ray_names[base.id]), base.id, None)
            if isinstance(found, type):
                return found
    return None


def private_ray_uses(path: Path, ours: set[str]) -> list[str]:
    """Where `path` uses a private name of Ray's: in its text; an import of a private
    module or name from Ray; a private attribute of an object that is not ours (a Tune
    object's `._attr`); a private method defined or a private attribute read in a subclass
    of a Ray class (an override of Tune's internals); a `__class__` swap."""
    text = path.read_text()
    found = [f"{path.name}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1)
             if PRIVATE_TEXT.search(line)]
    tree = ast.parse(text)
    ray_names = _ray_names(tree)
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ray":
            if any(_private(part) for part in node.module.split(".")) or any(
                    _private(a.name) for a in node.names):
                found.append(f"{where}: imports a private name of Ray ({node.module})")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            mine = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if not mine and node.attr not in ours and node.attr not in NOT_RAY:
                found.append(f"{where}: {ast.unparse(node)} (another library's private name)")
        elif isinstance(node, ast.Attribute) and node.attr == "__class__" and isinstance(
                node.ctx, ast.Store):
            found.append(f"{where}: swaps an object's __class__")
        elif isinstance(node, ast.ClassDef) and (base := _ray_base(node, ray_names)):
            for inner in ast.walk(node):
                if (isinstance(inner, ast.FunctionDef) and _private(inner.name)
                        and hasattr(base, inner.name)):
                    found.append(f"{where}: {node.name} overrides Ray's {inner.name}")
                elif (isinstance(inner, ast.Attribute) and _private(inner.attr)
                      and inner.attr not in ours):
                    found.append(f"{where}: {node.name} reads Ray's {inner.attr}")
    return found


def test_no_private_ray_name_outside_the_seam():
    paths = outside_seam()
    ours = own_names(paths)
    found = [use for path in paths for use in private_ray_uses(path, ours)]
    assert not found, ("private Ray names belong in orchestrator/engine/tune_compat/ "
                       "(call a function of it instead):\n" + "\n".join(found))


@pytest.mark.parametrize("line", [
    "from ray._common.utils import get_default_ray_temp_dir",
    "from ray.train import _internal",
    "x = tuner._local_tuner.get_run_config()",
    "for m, r in scheduler._brackets[0]._rungs: pass",
    "logging.getLogger('ray._private.authentication')",
    "scheduler.__class__ = Other",
    "from ray.tune.schedulers import HyperBandScheduler\n"
    "class Mine(HyperBandScheduler):\n    def _process_bracket(self, c, b): pass",
    "from ray.tune.schedulers import HyperBandScheduler\n"
    "class Mine(HyperBandScheduler):\n    def on_trial_add(self, c, t):\n"
    "        self._trial_info[t]",
])
def test_the_scan_finds_each_kind_of_contact(tmp_path, line):
    """Each way a private name of Ray's could come back is caught (the scan cannot pass
    by seeing nothing)."""
    module = tmp_path / "module.py"
    module.write_text(line + "\n")
    assert private_ray_uses(module, own_names(outside_seam()))


def test_the_seam_is_where_the_contacts_are():
    """The scan run over the seam itself finds its contacts: it is not blind to them."""
    ours = own_names(outside_seam())
    assert [p for p in SEAM.glob("*.py") if private_ray_uses(p, ours)]


def test_the_tested_range_is_pyprojects_ray_bound():
    from orchestrator.engine.tune_compat import TESTED_RAY

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (ray,) = [d for d in deps if d.startswith("ray[")]
    assert ray.split("]", 1)[1] == TESTED_RAY


def test_an_untested_ray_is_warned_about_once_with_what_to_do(monkeypatch):
    import importlib.metadata

    import orchestrator.engine.tune_compat as seam

    assert seam.ray_version_warning(importlib.metadata.version("ray")) is None  # installed
    assert seam.ray_version_warning("2.52.0") is None
    message = seam.ray_version_warning("2.61.0")
    assert message == (
        "ray 2.61.0 is outside the releases this tool was tested with (ray>=2.52,<2.61); "
        "its contacts with Ray's private names (orchestrator/engine/tune_compat/) may fail: "
        "install a tested release, e.g. `pip install 'ray[default,tune]>=2.52,<2.61'`")
    assert seam.ray_version_warning("2.51.1") is not None
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "3.0.0")
    from orchestrator.errors import SweepWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seam._check_ray_version()
    assert [(w.category, str(w.message)) for w in caught] == [
        (SweepWarning, seam.ray_version_warning("3.0.0"))]
