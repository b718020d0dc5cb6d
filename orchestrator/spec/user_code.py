"""A user's code in a sweep: factories and loops named `"module:attr"`, the folders they
live in, and what travels with the trials (`orchestrator.spec.shipped_code`).

A reference is imported where the spec is checked (before Ray starts) with the sweep's
code folders on `sys.path`, and its signature is read: an argument it does not take is
refused there, never in a trial. The trial imports it again the same way, from the
folders shipped to it (`orchestrator.engine.shipping`). Importing a module runs its top
level, as `python -c "import module"` would; a data factory itself is never called here.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from orchestrator.errors import OrchestratorError, first_line

# "module:attr" (uvicorn's `main:app`); both parts dotted names
REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$"


class UserCodeError(OrchestratorError):
    """A reference that cannot be imported, is not callable, or does not take a
    setting; `key` is the dotted spec key to blame."""

    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}")


@contextlib.contextmanager
def on_path(folders: Iterable[str | Path]) -> Iterator[None]:
    """`folders` first on sys.path for the body of the `with` (as Python puts a
    script's folder first); the path is put back afterwards."""
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path[:0] = added
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for folder in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)


def import_ref(ref: str, key: str, folders: Iterable[str | Path] = ()) -> Callable:
    """The callable `ref` ("module:attr") names, imported with `folders` on sys.path."""
    module_name, _, attr = ref.partition(":")
    folders = [str(f) for f in folders]
    _forget_if_elsewhere(module_name, folders)
    with on_path(folders):
        try:
            target: Any = importlib.import_module(module_name)
        except Exception as exc:  # ImportError, or whatever the module's top level raises
            raise UserCodeError(key, f"cannot import {module_name!r} "
                                     f"({type(exc).__name__}: {first_line(exc)})") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise UserCodeError(key, f"module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise UserCodeError(key, f"{ref} is a {type(target).__name__}, not a callable")
    return target


def _forget_if_elsewhere(module_name: str, folders: list[str]) -> None:
    """A module of the same name imported earlier from another folder (another sweep's
    code, in one process) is not this sweep's: import it afresh from `folders`."""
    top = module_name.split(".")[0]
    loaded = sys.modules.get(top)
    where = getattr(loaded, "__file__", None) or next(iter(getattr(loaded, "__path__", [])), None)
    if loaded is None or where is None or not folders:
        return
    if any(Path(where).resolve().is_relative_to(Path(f).resolve()) for f in folders):
        return
    if not any(module_file_in(Path(f), module_name) for f in folders):
        return  # an installed package, not one of these folders' modules
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]


def check_arguments(fn: Callable, given: Iterable[str], key: str, fixed: int = 0) -> None:
    """Refuse a keyword argument `fn` does not take (unless it takes **kwargs). `fixed`
    leading parameters are the ones this tool passes itself (input_shape, ...)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin without a signature: nothing to check against
    params = list(signature.parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params[fixed:]
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for name in given:
        if name not in accepted:
            raise UserCodeError(
                f"{key}.{name}", f"is not an argument of {getattr(fn, '__qualname__', fn)}"
                f" (it takes: {', '.join(accepted) or 'none'})")


def module_file_in(folder: Path, module_name: str) -> bool:
    """Does `folder` hold the top-level module or package of `module_name`?"""
    top = module_name.split(".")[0]
    return (folder / f"{top}.py").is_file() or (folder / top).is_dir()


def code_folders(refs: Iterable[str], declared: list[str], spec_dir: Path | None) -> list[str]:
    """The folders to put on sys.path and ship: the declared ones, and the spec's own
    folder when a referenced module lies there and in none of them (as Python finds a
    module beside a script)."""
    folders = list(declared)
    for ref in refs:
        module = ref.partition(":")[0]
        if any(module_file_in(Path(f), module) for f in folders):
            continue
        if spec_dir is not None and module_file_in(spec_dir, module):
            folders.append(str(spec_dir.resolve()))
    return list(dict.fromkeys(folders))
