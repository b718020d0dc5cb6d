"""The code is laid out by the pipeline's stages, and imports only point down:
cli -> jobs -> engine -> tracking -> analysis -> results -> integrations -> trainable ->
spec -> the base modules (errors, states, diagnosis, ray_auth, environ). The trainable never
imports the engine, the results or the CLI; the results never import analysis or the CLI;
tracking reads the results and the analysis, and the engine drives it. The integrations
(a framework's callbacks over a trial) run in users' code inside the trial, beside it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "orchestrator"
# lower first; a module may import its own stage and the stages below it
STAGES = ["base", "spec", "trainable", "integrations", "results", "analysis", "tracking",
          "engine", "jobs", "cli"]
BASE = {"errors", "states", "diagnosis", "ray_auth", "environ"}


def stage_of(module: str) -> str | None:
    """The stage of a dotted module name inside the package (None outside it)."""
    parts = module.split(".")
    if parts[0] != "orchestrator" or len(parts) < 2:
        return None
    if parts[1] in STAGES:
        return parts[1]
    assert parts[1] in BASE, f"{module}: a module outside every stage"
    return "base"


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        dotted = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out.append((dotted.removesuffix(".__init__"), path))
    return out


def imports_of(path: Path) -> set[str]:
    """Every orchestrator module the file imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("orchestrator.")}


def test_every_module_belongs_to_a_stage():
    # a base module may be a package of its own (diagnosis/): what is not a stage is base
    flat = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    flat |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")} - set(STAGES)
    assert flat == BASE, "a new top-level module: put it in its stage's folder"
    for name, _ in modules():
        if name not in ("orchestrator", "orchestrator.__main__"):
            stage_of(name)


def test_imports_point_down_the_pipeline():
    upward = []
    for name, path in modules():
        if name in ("orchestrator", "orchestrator.__main__"):
            continue  # the package's face and `python -m orchestrator` sit above it all
        own = STAGES.index(stage_of(name))
        upward += [f"{name} ({STAGES[own]}) imports {m}" for m in sorted(imports_of(path))
                   if (s := stage_of(m)) is not None and STAGES.index(s) > own]
    assert not upward, "\n".join(upward)


def test_stages_import_what_they_must_not_import_never():
    """The two rules the pipeline rests on, stated on their own."""
    for name, path in modules():
        stage = None if name in ("orchestrator", "orchestrator.__main__") else stage_of(name)
        used = {stage_of(m) for m in imports_of(path)}
        if stage in ("trainable", "integrations"):
            assert not used & {"engine", "results", "analysis", "cli", "jobs"}, name
        if stage == "results":
            assert not used & {"analysis", "cli", "engine", "jobs"}, name


def test_the_checker_sees_an_upward_import(tmp_path):
    """The test above would fail on a results module importing the CLI."""
    bad = tmp_path / "sink.py"
    bad.write_text("def f():\n    from orchestrator.cli.common import main\n")
    assert stage_of(sorted(imports_of(bad))[0]) == "cli"


def test_validating_a_spec_imports_neither_ray_nor_torch():
    code = ("import sys, orchestrator.spec, orchestrator.cli.common; "
            "print(sorted(m for m in ('ray', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_refining_a_sweep_imports_neither_ray_nor_torch(tmp_path):
    """`sweep refine` reads files and writes a spec: no Ray, no torch (for a spec whose
    trainable is the shared one; a user's factories are imported as `validate` does)."""
    from tests.built_sweeps import Made, log_spaced, write_sweep

    made = [Made({"optimizer.lr": lr}, score=0.5 + 0.03 * i)
            for i, lr in enumerate(log_spaced(1e-4, 0.1, 10))]
    folder = write_sweep(tmp_path / "sweeps", {
        "name": "made", "train": {"epochs": 8},
        "search_space": {"optimizer.lr": {"loguniform": [1e-4, 0.1]}}}, made)
    code = ("import sys\nfrom orchestrator.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print(sorted(m for m in ('ray', 'torch') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code, "refine", str(folder), "-o",
                          str(tmp_path / "next.yaml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "next.yaml").is_file()


def _caught_names(path: Path) -> list[tuple[int, str, str]]:
    """(line, alias.Name as written, the module it names) of every `except alias.Name`
    (alone or in a tuple) whose alias is an imported module."""
    tree = ast.parse(path.read_text())
    modules = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update({a.asname or a.name: a.name for a in node.names if a.asname} |
                           {a.name.split(".")[0]: a.name.split(".")[0]
                            for a in node.names if not a.asname})
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            for kind in getattr(node.type, "elts", [node.type]):
                if isinstance(kind, ast.Attribute) and isinstance(kind.value, ast.Name) \
                        and kind.value.id in modules:
                    found.append((node.lineno, f"{kind.value.id}.{kind.attr}",
                                  modules[kind.value.id]))
    return found


def missing_exceptions(paths: list[Path]) -> list[str]:
    """`file:line: except alias.Name` for each name its module does not have."""
    import importlib

    missing = []
    for path in paths:
        for line, written, module in _caught_names(path):
            try:
                target = importlib.import_module(module)
            except ImportError:  # `from package import name` of a class, not a module
                parent, _, attr = module.rpartition(".")
                target = getattr(importlib.import_module(parent), attr)
            if not hasattr(target, written.split(".")[-1]):
                missing.append(f"{path.name}:{line}: except {written}")
    return missing


def test_every_exception_an_except_names_exists(tmp_path):
    """`except pafs.ArrowInvalid` (pyarrow.fs has no such name) turned a bad storage URI
    into an AttributeError traceback instead of the one line it was written for: the
    name is only looked up when something is raised."""
    assert missing_exceptions([path for _, path in modules()]) == []
    bad = tmp_path / "storage.py"  # the checker sees that mistake
    bad.write_text("import pyarrow.fs as pafs\nfrom importlib import metadata\ntry:\n    pass\n"
                   "except (pafs.ArrowInvalid, metadata.PackageNotFoundError, OSError):\n"
                   "    pass\n")
    assert missing_exceptions([bad]) == ["storage.py:5: except pafs.ArrowInvalid"]


def test_exit_codes_are_defined_once():
    """Every exit code is a member of `errors.ExitCode`: no number passed to an exit and
    no error class with a number of its own."""
    from orchestrator.errors import ExitCode

    literal = []
    for name, path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in (
                    "sys.exit", "os._exit", "ctx.exit") and node.args and isinstance(
                    node.args[0], ast.Constant) and isinstance(node.args[0].value, int):
                literal.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
            elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                  and isinstance(node.value.value, int) and any(
                      "exit" in ast.unparse(t).lower() for t in node.targets)):
                literal.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    assert not literal, "use errors.ExitCode:\n" + "\n".join(literal)
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 130, 143]
