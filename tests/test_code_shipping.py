"""What of a user's code folder travels with a sweep, without Ray: never the home folder
or a root, no secret (dotfiles, keys, credential folders), nothing .gitignore'd or left
out by `code_exclude`, no symlink leaving the folder, no special file (and no hang on
one); what `sweep validate` says ships; a hash of exactly what ships; the job package of
`sweep submit`. The real trial's view of its shipped copy: test_user_projects.py."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator.engine.shipping import code_hash, stage
from orchestrator.spec import load_spec
from orchestrator.spec.shipped_code import code_digest, contents
from tests.helpers import invoke
from tests.user_project import SECRETS, SHIPPED, write_secret_project


@contextlib.contextmanager
def no_hang(seconds: int = 30) -> Iterator[None]:
    """Fail, instead of waiting for ever, when the body blocks (on a named pipe)."""
    def expired(*_):
        raise TimeoutError(f"blocked for more than {seconds} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def files_under(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text(errors="replace")
            for p in folder.rglob("*") if p.is_file()}


def test_only_the_code_ships_from_a_folder_full_of_secrets(tmp_path):
    spec_path = write_secret_project(tmp_path / "project", tmp_path / "outside")
    with no_hang():
        found = contents(spec_path.parent, ["scratch/"])
    assert {f.relative for f in found.files} == SHIPPED
    why = {left.relative: left.why for left in found.left_out}
    for secret in (".env", ".env.local", ".ssh/", ".aws/", ".netrc", "server.pem", "id_rsa",
                   ".git/", ".gitignore"):
        assert why[secret] == "default", secret
    assert why["deploy_key"] == "a private key"  # by its first line, whatever its name
    assert why["notes-private.txt"] == ".gitignore" and why["data/"] == ".gitignore"
    assert why["pkg/local_settings.py"] == "pkg/.gitignore"
    assert why["scratch/"] == "code_exclude"
    assert why["env-3.11/"] == "a virtual environment"
    assert why["shared.txt"].startswith("a symlink to ") and "outside the folder" in \
        why["shared.txt"]
    assert "outside the folder" in why["linked_dir"]
    assert why["pipe"].startswith("not a regular file")


@pytest.mark.parametrize("place, ships", [
    (".env", False), (".envrc", False), ("conf/.env.production", False), (".netrc", False),
    (".pgpass", False), (".pypirc", False), (".git-credentials", False), ("tls/site.pem", False),
    ("site.key", False), ("id_rsa", False), ("id_ed25519.pub", False), ("id_github", False),
    (".aws/", False), (".ssh/", False), (".gnupg/", False), (".kube/", False),
    (".docker/", False), (".ray/", False), ("home/.config/gcloud/", False),
    ("credentials", False), ("client_secret_123.json", False), ("state.tfstate", False),
    (".git/", False), (".venv/", False), ("__pycache__/", False), ("sweeps/", False),
    # code that only looks like it
    ("id_tools.py", True), ("id_pkg/", True), ("credentials/", True), ("credentials.py", True),
    ("keys.py", True), ("env.py", True), ("environment.yaml", True), ("ssh_utils/", True),
])
def test_the_default_list_leaves_out_secrets_not_code(place, ships):
    from orchestrator.spec.shipped_code import _excluded

    assert (_excluded(place, [], None) is None) is ships


def test_the_staged_copy_holds_no_secret_and_its_hash_is_what_ships(tmp_path):
    spec = load_spec(write_secret_project(tmp_path / "project", tmp_path / "outside"))
    assert spec.code_exclude == ("scratch/",)
    with no_hang():
        written = stage(list(spec.code), tmp_path / "staged", spec.code_exclude)
    staged = files_under(tmp_path / "staged" / "0")
    assert set(staged) == SHIPPED
    assert not any("SECRET" in text for text in staged.values())
    assert not any(p.is_symlink() for p in (tmp_path / "staged").rglob("*"))
    assert written == code_hash(spec) == code_digest(list(spec.code), spec.code_exclude)[0]
    # a secret's change is not a change of the code; a shipped file's is
    (spec_path := tmp_path / "project" / ".env").write_text("API_TOKEN=ROTATED")
    assert code_hash(spec) == written
    (tmp_path / "project" / "pkg" / "util.py").write_text("VALUE = 2\n")
    assert code_hash(spec) != written
    assert spec_path.is_file()


def test_validate_lists_what_ships_and_warns_of_what_cannot(tmp_path):
    spec_path = write_secret_project(tmp_path / "project", tmp_path / "outside")
    (tmp_path / "project" / "pkg" / "model.py").write_text("# weights\n" + "x = 1\n" * 3000)
    with no_hang():
        result = invoke("validate", str(spec_path))
    assert result.exit_code == 0, result.output
    plan = result.stdout
    assert re.search(r"\n {14}7 files, \d+\.\d KiB; largest: pkg/model\.py 17\.6 KiB, "
                     r"my_loop\.py 1\.1 KiB, spec\.yaml \d+ B\n", plan)
    assert "\n              left out: .aws/, .env, .env.local, .git/ and 6 more (the default " \
        "list); data/, notes-private.txt (.gitignore); deploy_key (a private key); env-3.11/ " \
        "(a virtual environment); pkg/local_settings.py (pkg/.gitignore); scratch/ " \
        "(code_exclude)\n" in plan
    warnings = result.stderr.strip().splitlines()
    project = tmp_path / "project"
    assert warnings == [
        f"warning: code: {project / 'linked_dir'} is a symlink to {tmp_path / 'outside' / 'dir'}"
        ", outside the folder: not shipped",
        f"warning: code: {project / 'pipe'} is not a regular file (a named pipe, socket or "
        "device): not shipped",
        f"warning: code: {project / 'shared.txt'} is a symlink to "
        f"{tmp_path / 'outside' / 'secret.txt'}, outside the folder: not shipped"]
    assert "SECRET" not in result.output
    dry = invoke("run", str(spec_path), "--dry-run")  # the same plan, the same warnings
    assert dry.exit_code == 0 and dry.stdout == plan and dry.stderr == result.stderr


def test_code_exclude_adds_patterns_and_re_includes_only_what_gitignore_left_out(tmp_path):
    spec_path = write_secret_project(tmp_path / "project", tmp_path / "outside")
    spec = yaml.safe_load(spec_path.read_text())
    spec["code_exclude"] = ["scratch/", "*.py", "!my_loop.py", "!notes-private.txt", "!.env",
                            "!id_rsa"]
    spec_path.write_text(yaml.safe_dump(spec))
    shipped = {f.relative for f in contents(spec_path.parent, spec["code_exclude"]).files}
    assert shipped == {"my_loop.py", "notes-private.txt", "spec.yaml"}  # never .env, id_rsa

    spec["code_exclude"] = ["ok/", "\\"]
    spec_path.write_text(yaml.safe_dump(spec))
    result = invoke("validate", str(spec_path))
    assert result.exit_code == 2
    assert result.stderr == (f"error: {spec_path}: code_exclude.1: is '\\\\', which is not a "
                             "gitignore pattern\n")


@pytest.mark.parametrize("code, problem", [
    (["~"], "{home} is your home folder (with ~/.ssh, ~/.aws, ~/.ray/auth_token...)"),
    (["/"], "/ is a filesystem root"),
    (["{holder}"], "{holder} holds your home folder {home}"),
    (["~/.ssh"], "{home}/.ssh lies in .ssh, a folder of credentials"),
    ([], "the spec's own folder {home} (where a module it names lies) is your home folder"),
])
def test_the_home_folder_a_root_or_a_folder_of_secrets_never_ship(tmp_path, code, problem):
    holder = tmp_path / "users"
    home = holder / "me"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("SECRET-SSH-KEY")
    (home / "my_loop.py").write_text("def train(config, trial):\n    pass\n")
    spec = {"name": "careless", "metric": "val_loss", "mode": "min",
            "train": {"function": "my_loop:train", "epochs": 1},
            "code": [c.format(holder=holder) for c in code]}
    (home / "spec.yaml").write_text(yaml.safe_dump(spec))
    with no_hang():
        result = invoke("validate", str(home / "spec.yaml"), env={"HOME": str(home)})
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith(f"error: {home / 'spec.yaml'}: code: ")
    assert problem.format(home=home, holder=holder) in line
    assert line.endswith("name a project folder that holds only your code")


def test_a_named_pipe_beside_the_spec_or_as_the_spec_does_not_hang(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "my_loop.py").write_text("def train(config, trial):\n    pass\n")
    (project / "spec.yaml").write_text("name: piped\nmetric: val_loss\nmode: min\n"
                                       "train: {function: 'my_loop:train', epochs: 1}\n")
    os.mkfifo(project / "events.fifo")
    os.mkfifo(tmp_path / "spec-pipe.yaml")
    with no_hang():
        beside = invoke("validate", str(project / "spec.yaml"))
        assert beside.exit_code == 0 and "events.fifo is not a regular file" in beside.stderr
        piped = invoke("validate", str(tmp_path / "spec-pipe.yaml"))
    assert piped.exit_code == 2
    assert piped.stderr == (f"error: {tmp_path / 'spec-pipe.yaml'}: is not a regular file (a "
                            "named pipe, a device or a folder): a spec is a YAML file\n")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_file_is_one_line(tmp_path):
    spec_path = write_secret_project(tmp_path / "project", tmp_path / "outside")
    locked = tmp_path / "project" / "pkg" / "util.py"
    locked.chmod(0)
    try:
        result = invoke("validate", str(spec_path))
    finally:
        locked.chmod(0o644)
    assert result.exit_code == 2
    assert f"code: cannot read {locked} (Permission denied)" in result.stderr


def test_a_submitted_job_carries_only_what_ships(tmp_path):
    from orchestrator.jobs.staging import package_job

    spec = load_spec(write_secret_project(tmp_path / "project", tmp_path / "outside"))
    package = tmp_path / "package"
    package.mkdir()
    with no_hang():
        written = package_job(spec, "/shared/sweeps", package)
    carried = files_under(package)
    assert set(carried) == {"spec.yaml", *(f"code/0/{f}" for f in SHIPPED)}
    assert not any(secret in text for text in carried.values() for secret in
                   [t for t in SECRETS.values() if "SECRET" in t] + ["SECRET"])
    assert written["code"] == ["code/0"] and written["code_exclude"] == ["scratch/"]
    # the job reads it back and ships the same files again, under the same hash
    (package / "spec.yaml").write_text(yaml.safe_dump(written))
    assert code_hash(load_spec(package / "spec.yaml")) == code_hash(spec)


@pytest.mark.slow
def test_the_console_script_says_one_line_for_each_mistake(tmp_path):
    """The real process, in a fresh shell: a named pipe beside the spec does not hang
    validate, and a root as code, a URI pyarrow cannot open and a folder that takes no
    file are one line each, with their exit codes."""
    import subprocess

    from tests.helpers import SWEEP, newcomer_env, tiny_spec, write_spec

    env = newcomer_env(tmp_path / "home")
    project = write_secret_project(tmp_path / "project", tmp_path / "outside")
    plain = write_spec(tmp_path, tiny_spec(tmp_path))
    rooted = write_spec(tmp_path, tiny_spec(tmp_path, code=["/"]), "rooted.yaml")
    cases = [
        (["validate", str(project)], 0, "warning: code: "),
        (["validate", str(rooted)], 2, f"error: {rooted}: code: / is a filesystem root; "),
        (["run", str(plain), "--storage", "s3://b/x?bogus_option=1", "--quiet"], 2,
         "error: storage: 's3://b/x?bogus_option=1' is not a storage URI pyarrow can open"),
        (["run", str(plain), "--storage", "/proc", "--quiet"], 4,
         "error: storage: cannot write /proc (No such file or directory)"),
    ]
    for args, code, start in cases:
        result = subprocess.run([SWEEP, *args], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == code, (args, result.stderr[-2000:])
        lines = result.stderr.strip().splitlines()
        assert lines and all(line.startswith(start) for line in lines), result.stderr
        assert len(lines) == (3 if code == 0 else 1)
