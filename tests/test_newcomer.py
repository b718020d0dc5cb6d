"""The newcomer's path: the console script on a machine where Ray never ran.

A test process that started Ray has written `~/.ray/auth_token` and exported
`RAY_AUTH_MODE`, which hides what a first run sees. These tests run `sweep` in a
subprocess with HOME pointed at an empty folder and every `RAY_*` variable removed,
and without `--address`, so they start their own embedded Ray like a new user's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import REPO, newcomer_env, tiny_spec, write_spec

pytestmark = pytest.mark.slow


def run_as_newcomer(args: list[str], cwd: Path, home: Path,
                    timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=newcomer_env(home), capture_output=True,
                          text=True, timeout=timeout)


def readme_quickstart_command() -> str:
    """The `sweep ...` part of README's first command (the set-up before it is the venv)."""
    block = re.search(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), re.S)
    assert block, "README has no bash block"
    command = block.group(1).split("&&")[-1].strip()
    assert command.startswith("sweep run "), command
    return command


def test_readme_quickstart_runs_verbatim_on_a_fresh_machine(tmp_path):
    """README's first command, in a new folder holding the shipped specs, as a newcomer."""
    shutil.copytree(REPO / "search_spaces", tmp_path / "search_spaces")
    command = readme_quickstart_command()
    result = run_as_newcomer(["bash", "-c", command], cwd=tmp_path, home=tmp_path / "home",
                             timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert re.search(r"Top 10 of 24 trials by best_val_acc", result.stdout), result.stdout
    trials = pd.read_parquet(tmp_path / "sweeps" / "digits-mlp-asha" / "results" /
                             "trials.parquet")
    assert len(trials) == 24 and (trials["status"] == "terminated").all()
    # Ray's own default for a new local instance: token auth, the token written to HOME
    assert (tmp_path / "home" / ".ray" / "auth_token").is_file()
    assert (tmp_path / "sweeps" / "digits-mlp-asha" / "results" / "history.parquet").is_file()


def test_a_ray_that_cannot_start_is_one_line_and_exit_3(tmp_path):
    """Ray's temp folder cannot be made (TMPDIR lies under a file): one line naming what
    failed, that Ray left no logs, and what to try; the traceback only with --debug."""
    path = write_spec(tmp_path, tiny_spec(tmp_path, name="nostart", num_samples=1))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = newcomer_env(tmp_path / "home")
    env["TMPDIR"] = str(blocker / "tmp")
    result = subprocess.run(["sweep", "run", str(path), "--quiet"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 3, result.stderr[-3000:]
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, result.stderr
    assert error_lines[0].startswith("error: could not start Ray (")
    # Ray could not make its temp folder, so it has no session of its own to point at
    # (not another job's `session_latest`)
    assert "Ray started no session (no logs)" in error_lines[0]
    assert "--debug" in error_lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "sweeps").exists()  # nothing written

    debug = subprocess.run(["sweep", "run", str(path), "--quiet", "--debug"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=300)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
