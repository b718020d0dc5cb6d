"""The user's code a spec names, checked where the spec is checked (before Ray starts):
each factory imports and is callable, takes every setting it is given or searched over,
and the code folders it lives in are found, safe and not too large to ship."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from orchestrator.errors import SpecError
from orchestrator.spec.settings import LoopConfig, UserFactory
from orchestrator.spec.shipped_code import code_digest, compile_patterns, refuse_unsafe_folder
from orchestrator.spec.user_code import (
    UserCodeError,
    check_arguments,
    code_folders,
    import_ref,
)

# (section of train, the arguments this tool passes itself before the user's settings)
FACTORIES = {"model": ("input_shape", "num_outputs"), "dataset": ("seed",)}


def user_refs(spec: Any) -> dict[str, str]:
    """{dotted spec key: "module:attr"} of every piece of user code the spec names."""
    if isinstance(spec.train, LoopConfig):
        return {"train.function": spec.train.function}
    refs = {}
    for section in FACTORIES:
        value = getattr(spec.train, section)
        if isinstance(value, UserFactory):
            refs[f"train.{section}.factory"] = value.factory
    return refs


def check_loop(fn: Any, ref: str) -> None:
    """A loop is called as fn(config, trial): refuse one that cannot take that."""
    try:
        inspect.signature(fn).bind(object(), object())
    except TypeError:
        raise UserCodeError("train.function", f"{ref} must take (config, trial), but its "
                            f"signature is {inspect.signature(fn)}") from None
    except ValueError:
        pass  # a builtin without a signature: nothing to check against


def resolve_code(spec: Any, base_dir: Path | None, source: str) -> Any:
    """`spec` with its code folders absolute and complete (the spec's own folder added
    when a module it names lies there), refused when unsafe to ship (the home folder, a
    root), read whole (what ships, and its hash) before any is imported; every factory
    imported and its arguments checked. One SpecError line for the first problem."""
    base = base_dir or Path.cwd()
    declared = [str((base / Path(c).expanduser()).resolve()) for c in spec.code]
    refs = user_refs(spec)
    folders = code_folders(refs.values(), declared, base_dir)
    try:
        compile_patterns(spec.code_exclude, "code_exclude")
        for folder in folders:
            if Path(folder).is_dir():
                refuse_unsafe_folder(Path(folder), "code", what=(
                    folder if folder in declared else
                    f"the spec's own folder {folder} (where a module it names lies)"))
        if folders:
            code_digest(folders, spec.code_exclude)
        for key, ref in refs.items():
            section = key.split(".")[1]
            fn = import_ref(ref, key, folders)
            if section == "function":
                check_loop(fn, ref)
                continue
            settings = getattr(spec.train, section).settings
            check_arguments(fn, settings, f"train.{section}", fixed=len(FACTORIES[section]))
            searched = [k.split(".", 1)[1] for k in spec.search_space
                        if k.startswith(f"{section}.")]
            check_arguments(fn, searched, f"search_space.{section}",
                            fixed=len(FACTORIES[section]))
    except UserCodeError as exc:
        raise SpecError(source, exc.key, exc.problem) from None
    return spec.model_copy(update={"code": tuple(folders)})
