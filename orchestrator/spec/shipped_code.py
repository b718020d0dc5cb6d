"""What of a user's code folder travels with a sweep to every trial, and what never does.

A code folder (`code:`, or the spec's own folder) is walked, and a file ships when:
- it is a regular file: a named pipe, socket or device is never opened (reading one can
  block for ever or never end), and a file is read through a descriptor checked to be one;
- it lies inside the folder: a symlink is followed only when its target does, a link
  leaving the folder is not shipped and its target never read (the plan names it);
- neither it nor a folder above it matches DEFAULT_EXCLUDES (secrets, version control,
  environments, caches, sweep results), which nothing re-includes; nor the folder's
  `.gitignore` (and `.rayignore`) files (git's semantics, through `pathspec`, one per
  folder as git reads them) nor the spec's `code_exclude:` patterns, whose `!pattern`
  re-includes what those (not the defaults) left out;
- it does not begin as a PEM private key, whatever its name.
The home folder, a filesystem root and a folder that holds the home folder are refused
outright, as is a folder inside one of credentials (`~/.ssh`, `~/.aws`, ...).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pathspec

from orchestrator.errors import strerror
from orchestrator.spec.user_code import UserCodeError

MAX_CODE_BYTES = 100 * 2**20
# a .gitignore larger than this is not one (it is not read)
MAX_GITIGNORE_BYTES = 2**20

# folders that hold credentials: never a code folder, nor inside one
CREDENTIAL_DIRS = (".ssh", ".aws", ".gnupg", ".kube", ".docker", ".azure", ".ray",
                   ".kaggle", ".databricks")
# gitignore patterns of what never travels, checked before (and regardless of) the
# folder's .gitignore and code_exclude
DEFAULT_EXCLUDES = (
    # secrets: environment files, keys, tokens and the folders of tools that keep them
    ".env*", ".netrc", "_netrc", ".pgpass", ".pypirc", ".npmrc", ".git-credentials",
    ".vault-token", ".boto", ".s3cfg", ".databrickscfg", ".htpasswd",
    *(f"{d}/" for d in CREDENTIAL_DIRS), "**/.config/gcloud/", ".cache/",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk", "*.kdbx",
    "*.gpg", "*.asc", "*.tfstate", "*.tfstate.*",
    "credentials", "!credentials/", "credentials.json", "client_secret*.json",
    # ssh keys (id_rsa, id_ed25519, their .pub, id_github...); modules and packages
    # named id_* still travel
    "id_*", "!id_*.py", "!id_*/",
    # version control, environments, caches, build and sweep output
    ".git/", ".hg/", ".svn/", ".venv/", "venv/", ".tox/", ".nox/", "__pycache__/",
    "*.pyc", "*.pyo", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", "node_modules/",
    ".ipynb_checkpoints/", "*.egg-info/", "sweeps/", "lr_find/",
    # read here, never shipped: Ray would apply them again to the staged copy
    ".gitignore", ".rayignore",
)
# the ignore files honoured in every folder, in git's way (Ray reads both too)
IGNORE_FILES = (".gitignore", ".rayignore")
# what a PEM private key begins with ("-----BEGIN RSA PRIVATE KEY-----", "... OPENSSH ...")
PEM_BEGIN, PEM_PRIVATE = b"-----BEGIN ", b"PRIVATE KEY-----"


@dataclass(frozen=True)
class CodeFile:
    path: Path  # on this machine (a link inside the folder: the link)
    relative: str  # inside its folder, with '/'
    size: int
    executable: bool = False  # kept in the copy (a script the code runs)


@dataclass(frozen=True)
class LeftOut:
    relative: str  # a folder's ends in '/'
    why: str  # "default", ".gitignore" (its folder's), "code_exclude", or a sentence
    worth_warning: bool = False  # worth a warning: a link leaving the folder, a special file


@dataclass
class FolderContents:
    folder: Path
    files: list[CodeFile] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


@lru_cache(maxsize=1)
def _defaults() -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(DEFAULT_EXCLUDES)


def compile_patterns(patterns: Iterable[str], key: str) -> pathspec.GitIgnoreSpec:
    """`code_exclude`'s gitignore patterns; one that is not a pattern is a UserCodeError
    naming its index."""
    patterns = list(patterns)
    for index, pattern in enumerate(patterns):
        try:
            pathspec.GitIgnoreSpec.from_lines([pattern])
        except ValueError:
            raise UserCodeError(f"{key}.{index}", f"is {pattern!r}, which is not a "
                                "gitignore pattern") from None
    return pathspec.GitIgnoreSpec.from_lines(patterns)


def _gitignore(path: Path) -> pathspec.GitIgnoreSpec | None:
    """The patterns of a folder's .gitignore (a regular file; lines git would not take
    are left out, as git leaves them out), or None."""
    data = read_regular(path, limit=MAX_GITIGNORE_BYTES)
    if data is None:
        return None
    lines = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            pathspec.GitIgnoreSpec.from_lines([line])
        except ValueError:
            continue
        lines.append(line)
    return pathspec.GitIgnoreSpec.from_lines(lines)


def home_folders() -> set[Path]:
    """This user's home folder, by $HOME and by the password database (a test or a job
    may point HOME elsewhere)."""
    homes = set()
    for home in (os.environ.get("HOME"), _passwd_home()):
        if home:
            homes.add(Path(home).resolve())
    return homes


def _passwd_home() -> str | None:
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except (KeyError, OSError):
        return None


def refuse_unsafe_folder(folder: Path, key: str, what: str = "") -> None:
    """A code folder may be none of: a filesystem root, the home folder, a folder that
    holds the home folder, a folder of credentials or one inside it."""
    real = Path(folder).resolve()
    what = what or f"{folder}"
    advice = ("a code folder travels to every trial (on a cluster, to every node): "
              "name a project folder that holds only your code")
    if real.parent == real:
        raise UserCodeError(key, f"{what} is a filesystem root; {advice}")
    for home in sorted(home_folders()):
        if real == home:
            raise UserCodeError(key, f"{what} is your home folder (with ~/.ssh, ~/.aws, "
                                f"~/.ray/auth_token...); {advice}")
        if home.is_relative_to(real):
            raise UserCodeError(key, f"{what} holds your home folder {home}; {advice}")
    secret = next((part for part in real.parts if part in CREDENTIAL_DIRS), None)
    if secret:
        raise UserCodeError(key, f"{what} lies in {secret}, a folder of credentials; {advice}")


def _excluded(name: str, levels: list[tuple[str, str, pathspec.GitIgnoreSpec]],
              user: pathspec.GitIgnoreSpec | None) -> str | None:
    """Why `name` (relative, a folder's with a trailing '/') stays behind, or None."""
    if _defaults().match_file(name):
        return "default"
    why = None
    for base, file, spec in levels:  # the root's first, the deepest last (git's order)
        decided = spec.check_file(name[len(base):]).include
        if decided is not None:
            why = f"{base}{file}" if decided else None
    if user is not None:
        decided = user.check_file(name).include
        if decided is not None:
            why = "code_exclude" if decided else None
    return why


def read_regular(path: Path, root: Path | None = None, limit: int | None = None,
                 head: int | None = None) -> bytes | None:
    """The bytes of `path` if it is a regular file (and, given `root`, lies inside it
    once links are followed), else None, without blocking on a pipe or a device: it is
    opened non-blocking and checked through its descriptor before it is read. `limit`:
    None past that many bytes; `head`: only the first bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        if limit is not None and info.st_size > limit:
            return None
        if root is not None and not Path(os.path.realpath(path)).is_relative_to(root):
            return None
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return stream.read(head) if head is not None else stream.read()
    finally:
        os.close(fd)


def _private_key(path: Path) -> bool:
    try:
        first = read_regular(path, head=100) or b""
    except OSError:  # unreadable: `shipped` says so when it reads it
        return False
    return first.startswith(PEM_BEGIN) and PEM_PRIVATE in first.split(b"\n", 1)[0]


def contents(folder: str | Path, exclude: Iterable[str] = ()) -> FolderContents:
    """What of `folder` ships (files sorted by place) and what stays behind, and why.
    Only names are read, the first bytes of each file (a private key?) and .gitignore
    files; an unreadable folder is a UserCodeError."""
    root = Path(folder)
    real_root = root.resolve()
    user = compile_patterns(exclude, "code_exclude") if exclude else None
    found = FolderContents(root)

    def walk(here: Path, chain: tuple[Path, ...], base: str, levels: list) -> None:
        try:
            ignores = [(base, name, spec) for name in IGNORE_FILES
                       if (spec := _gitignore(here / name)) is not None]
            entries = sorted(os.scandir(here), key=lambda e: e.name)
        except OSError as exc:
            raise UserCodeError("code", f"cannot read {exc.filename or here} "
                                f"({strerror(exc)}); make it readable or leave it out with "
                                "code_exclude") from None
        levels = [*levels, *ignores]
        for entry in entries:
            relative = base + entry.name
            target = Path(os.path.realpath(entry.path))
            if entry.is_symlink() and not target.is_relative_to(real_root):
                found.left_out.append(LeftOut(relative, f"a symlink to {os.readlink(entry.path)}"
                                              ", outside the folder", worth_warning=True))
                continue
            try:
                info = os.stat(entry.path)
                mode = info.st_mode
            except OSError:  # a dangling link, or a loop of links
                found.left_out.append(LeftOut(relative, "a symlink to nothing", worth_warning=True))
                continue
            name = relative + "/" if stat.S_ISDIR(mode) else relative
            why = _excluded(name, levels, user)
            if why:
                found.left_out.append(LeftOut(name, why))
            elif stat.S_ISDIR(mode):
                if target in chain or chain[-1].is_relative_to(target):
                    found.left_out.append(LeftOut(name, "a symlink to a folder above it"))
                elif (Path(entry.path) / "pyvenv.cfg").is_file():
                    found.left_out.append(LeftOut(name, "a virtual environment"))
                elif (Path(entry.path) / "results" / "sweep.json").is_file():
                    found.left_out.append(LeftOut(name, "a sweep folder"))
                else:
                    walk(Path(entry.path), (*chain, target), name, levels)
            elif not stat.S_ISREG(mode):
                found.left_out.append(LeftOut(relative, "not a regular file (a named pipe, "
                                              "socket or device)", worth_warning=True))
            elif _private_key(Path(entry.path)):
                found.left_out.append(LeftOut(relative, "a private key"))
            else:
                found.files.append(CodeFile(Path(entry.path), relative, info.st_size,
                                            bool(mode & stat.S_IXUSR)))

    walk(root, (real_root,), "", [])
    return found


def listings(folders: list[str], exclude: Iterable[str] = ()) -> list[FolderContents]:
    """`contents` of every code folder, refusing (one line) a missing or unsafe folder
    and code past MAX_CODE_BYTES (data belongs in storage, not in a job package)."""
    found = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise UserCodeError("code", f"{folder} is not a folder")
        refuse_unsafe_folder(Path(folder), "code")
        found.append(contents(folder, exclude))
    total = sum(listing.size for listing in found)
    if total > MAX_CODE_BYTES:
        largest = max((f for listing in found for f in listing.files), key=lambda f: f.size)
        raise UserCodeError(
            "code", f"the code folders ({', '.join(folders)}) hold {total / 2**20:.0f} MiB, "
            f"more than {MAX_CODE_BYTES // 2**20} MiB (the largest: {largest.path}, "
            f"{largest.size / 2**20:.1f} MiB); ship code only: put data on the storage and "
            "read it from there, or leave files out with code_exclude")
    return found


def shipped(folders: list[str], exclude: Iterable[str] = ()
            ) -> Iterator[tuple[str, bytes, bool]]:
    """(place in the package, bytes, executable?) of every file that ships; its place
    is `<index>/<relative>`."""
    for index, listing in enumerate(listings(folders, exclude)):
        root = listing.folder.resolve()
        for file in listing.files:
            try:
                data = read_regular(file.path, root)
            except OSError as exc:
                raise UserCodeError("code", f"cannot read {file.path} ({strerror(exc)}); make "
                                    "it readable or leave it out with code_exclude") from None
            if data is None:
                raise UserCodeError("code", f"{file.path} changed while it was read (it is no "
                                    "longer a regular file inside the folder)")
            yield f"{index}/{file.relative}", data, file.executable


def digest_of(files: Iterable[tuple[str, bytes, bool]]) -> tuple[str, int]:
    """(sha256 of each file's place and bytes, total bytes)."""
    digest, total = hashlib.sha256(), 0
    for place, data, _ in files:
        total += len(data)
        digest.update(f"{place}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest(), total


def code_digest(folders: list[str], exclude: Iterable[str] = ()) -> tuple[str, int]:
    """(sha256 of exactly what ships, total bytes): what sweep.json records."""
    return digest_of(shipped(folders, exclude))


# -- what the plan says of it ------------------------------------------------------------

def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} MiB"


def _names(names: list[str], shown: int = 4) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def plan_lines(found: list[FolderContents]) -> list[str]:
    """What ships (count, size, the largest files) and what stays behind (by reason),
    for `sweep validate` and the plan a run prints."""
    several = len(found) > 1

    def place(listing: FolderContents, relative: str) -> str:
        return f"{listing.folder.name}/{relative}" if several else relative

    files = [(f, listing) for listing in found for f in listing.files]
    largest = sorted(files, key=lambda pair: -pair[0].size)[:3]
    lines = [f"{len(files)} files, {_size(sum(f.size for f, _ in files))}"
             + ("; largest: " + ", ".join(f"{place(listing, f.relative)} {_size(f.size)}"
                                          for f, listing in largest) if largest else "")]
    by_reason: dict[str, list[str]] = {}
    for listing in found:
        for left in listing.left_out:
            if not left.worth_warning:
                reason = "the default list" if left.why == "default" else left.why
                by_reason.setdefault(reason, []).append(place(listing, left.relative))
    if by_reason:
        lines.append("left out: " + "; ".join(f"{_names(names)} ({reason})"
                                              for reason, names in by_reason.items()))
    return lines


def warnings(found: list[FolderContents], shown: int = 5) -> list[str]:
    """One line for each file that looked like code but cannot ship: a symlink leaving
    its folder (its target is never read), a named pipe, socket or device."""
    skipped = [(listing, left) for listing in found for left in listing.left_out
               if left.worth_warning]
    lines = [f"warning: code: {listing.folder / left.relative} is {left.why}: not shipped"
             for listing, left in skipped[:shown]]
    if len(skipped) > shown:
        lines.append(f"warning: code: {len(skipped) - shown} more not shipped, for the same "
                     "reasons")
    return lines
