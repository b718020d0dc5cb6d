"""Fault helpers for tests of resume, node loss and cluster submit: start the console
script or a Ray node in a process group of its own, wait for a state on disk, kill by
process id. Every process started here is ended by its own process group."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from orchestrator.results import schema
from tests.helpers import REPO, SWEEP

RAY = str(Path(sys.executable).with_name("ray"))


def wait_for(condition: Callable[[], object], timeout_s: float, what: str,
             every_s: float = 0.1) -> object:
    """Poll `condition` until it returns something truthy; fail the test after
    `timeout_s` saying what was awaited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def start_sweep(*args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.Popen:
    """The console script in a new process group (so a kill reaches all of it)."""
    return subprocess.Popen([SWEEP, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=env if env is not None else dict(os.environ))


def kill_run_when(ready: Callable[[], object], what: str, *args: str,
                  cwd: Path = REPO, frozen: bool = False) -> None:
    """Start `sweep ARGS` in `cwd`, wait for `ready()`, then SIGKILL its process group
    and whatever it started (the driver dies without a word, as on a lost machine).
    `frozen`: when `ready()` holds, the group is stopped (SIGSTOP) and killed only if
    `ready()` still holds of what it left (else it goes on): the kill lands in the very
    state `ready()` saw, however late a loaded machine runs the kill."""
    def stopped_ready(proc: subprocess.Popen) -> bool:
        if not ready():
            return False
        if not frozen:
            return True
        kill_group(proc, signal.SIGSTOP)
        if ready():
            return True
        kill_group(proc, signal.SIGCONT)
        return False

    with ended_at_exit(start_sweep(*args, cwd=cwd)) as proc:
        wait_for(lambda: stopped_ready(proc) or proc.poll() is not None, 180, what)
        assert proc.poll() is None, "the sweep ended before the kill"
        kill_group(proc)
        proc.wait(timeout=30)


def snapshotted_since(sweep: Path, ready: bool, seen: list[float]) -> bool:
    """Whether Tune has written a snapshot of its state 0.5 s after `ready` first held
    (Tune snapshots every 0.5 s under TUNE_GLOBAL_CHECKPOINT_S=0.5): a kill then finds
    Tune's state knowing the checkpoints on disk at that moment. `seen` keeps the moment
    across calls."""
    if not ready:
        return False
    seen.append(seen[0] if seen else time.time())
    return any(p.stat().st_mtime > seen[0] + 0.5 for p in sweep.glob("experiment_state-*.json"))


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """`sig` to the process group of `proc`; with SIGKILL, to every process below it
    too: an embedded Ray's processes live in sessions of their own
    (orchestrator/engine/tune_compat/), and its agents would outlive the driver."""
    below = descendants(proc.pid) if sig == signal.SIGKILL else set()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    for pid in below:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def descendants(pid: int) -> set[int]:
    """The live processes below `pid`: its children, theirs, and so on."""
    parents = _parents()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of `pids` that still run (zombies left out)."""
    return set(_parents()) & pids


def named(pids: set[int], name: str) -> set[int]:
    """Those of `pids` whose command name is `name` (e.g. 'gcs_server')."""
    found = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == name:
                found.add(pid)
    return found


@contextlib.contextmanager
def ended_at_exit(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Whatever the test does, the process group is gone afterwards."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            kill_group(proc)
        proc.communicate(timeout=60)


def read_trials(results_dir: Path) -> pd.DataFrame | None:
    """The trials table as the sink last wrote it (trials.parquet and its parts), or None
    before that."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.results.folder import read_trials as read

    try:
        return read(results_dir)
    except (OSError, ValueError, OrchestratorError):  # replaced while being read
        return None


def ended_trials(results_dir: Path) -> int:
    trials = read_trials(results_dir)
    return 0 if trials is None else int(trials[schema.STOP_REASON].notna().sum())


def reported_epochs(results_dir: Path) -> int:
    from orchestrator.errors import OrchestratorError
    from orchestrator.results.folder import read_history

    try:
        history = read_history(results_dir)  # history.parquet and its parts
    except (OSError, ValueError, OrchestratorError):  # replaced while being read
        return 0
    return 0 if history is None else len(history)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parents() -> dict[int, int]:
    """pid -> parent pid of every live process (zombies left out)."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,stat="], capture_output=True,
                         text=True).stdout
    return {int(pid): int(ppid) for pid, ppid, stat in (line.split()[:3] for line in
                                                         out.splitlines())
            if not stat.startswith("Z")}


@dataclass
class RayNode:
    """A Ray node started with `ray start --block` in its own process group: the
    group holds the node's raylet, agents and (on a head) the GCS; Ray's worker
    processes start sessions of their own, so they are found as the raylet's children."""

    proc: subprocess.Popen
    temp_dir: Path

    @classmethod
    def start(cls, temp_dir: Path, *args: str, env: dict | None = None) -> RayNode:
        temp_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [RAY, "start", "--block", f"--temp-dir={temp_dir}", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            env=env if env is not None else dict(os.environ),
        )
        return cls(proc, temp_dir)

    def pids(self) -> set[int]:
        """Live processes of this node: its process group and all their descendants."""
        out = subprocess.run(["ps", "-e", "-o", "pid=,pgid=,stat="], capture_output=True,
                             text=True).stdout
        found = {int(pid) for pid, pgid, stat in (line.split()[:3] for line in
                                                  out.splitlines())
                 if int(pgid) == self.proc.pid and not stat.startswith("Z")}
        parents = _parents()
        grew = True
        while grew:
            more = {pid for pid, ppid in parents.items() if ppid in found} - found
            found |= more
            grew = bool(more)
        return found

    def raylet_pid(self) -> int | None:
        for pid in self.pids():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "raylet":
                    return pid
        return None

    def stop(self) -> None:
        workers = self.pids()
        kill_group(self.proc)
        for pid in workers:  # worker processes live in sessions of their own
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)


def answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def token_env() -> dict[str, str]:
    """The environment of a cluster's nodes and clients: token auth with a fresh token,
    no other Ray settings, this venv's scripts first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    # the nodes' `python` (a job's entrypoint) is this one, the project installed in it,
    # whether or not the shell that started the tests activated the venv
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@contextlib.contextmanager
def ray_head(*resources: str) -> Iterator[tuple[str, dict]]:
    """One Ray head node on this machine declaring `resources` (`--num-cpus=4`,
    `--num-gpus=2`: Ray schedules declared GPUs whether or not CUDA is there), with
    token auth, its own temp folder and ports, ended by process ids whatever happens.
    Yields its GCS address and the environment its clients need."""
    short = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    port, env = free_port(), token_env()
    head = RayNode.start(short / "head", "--head", f"--port={port}", *resources,
                         "--include-dashboard=false",
                         f"--dashboard-agent-listen-port={free_port()}",
                         f"--ray-client-server-port={free_port()}", env=env)
    try:
        wait_for(lambda: answers(port), 90, "the head's GCS")
        wait_for(head.raylet_pid, 90, "the head's raylet")
        yield f"127.0.0.1:{port}", env
    finally:
        head.stop()
        shutil.rmtree(short, ignore_errors=True)


@dataclass
class Cluster:
    address: str  # the GCS, HOST:PORT
    dashboard: str | None  # the Jobs API, http://127.0.0.1:PORT
    head: RayNode
    worker: RayNode
    env: dict  # what a client of this cluster needs: token auth and its token


@contextlib.contextmanager
def ray_cluster(dashboard: bool = False) -> Iterator[Cluster]:
    """A two-node Ray cluster on this machine: a head (its dashboard and Jobs API on
    127.0.0.1 when asked) and a worker node with its own temp folder, one CPU each,
    token auth with a fresh token. Ended by process ids, whatever happens.
    Temp folders are short: Ray's socket paths inside them must fit in 107 bytes."""
    short = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    port = free_port()
    env = token_env()
    options = ["--include-dashboard=false"]
    dashboard_port = None
    if dashboard:
        dashboard_port = free_port()
        options = ["--include-dashboard=true", "--dashboard-host=127.0.0.1",
                   f"--dashboard-port={dashboard_port}"]
    # ports Ray fixes by default (52365, 10001) may be taken by another Ray on the machine
    head = RayNode.start(short / "head", "--head", f"--port={port}", "--num-cpus=1",
                         f"--dashboard-agent-listen-port={free_port()}",
                         f"--ray-client-server-port={free_port()}", *options, env=env)
    worker = None
    try:
        wait_for(lambda: answers(port), 90, "the head's GCS")
        if dashboard_port:
            wait_for(lambda: answers(dashboard_port), 90, "the head's dashboard")
        worker = RayNode.start(short / "worker", f"--address=127.0.0.1:{port}",
                               "--num-cpus=1", f"--dashboard-agent-listen-port={free_port()}",
                               env=env)
        wait_for(worker.raylet_pid, 90, "the worker node's raylet")
        yield Cluster(f"127.0.0.1:{port}",
                      f"http://127.0.0.1:{dashboard_port}" if dashboard_port else None,
                      head, worker, env)
    finally:
        if worker:
            worker.stop()
        head.stop()
        shutil.rmtree(short, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(folder: Path, port: int | None = None) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 (sqlite store, artifacts proxied under
    `folder`), in its own process group, gone after the `with`; yields its URI."""
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    proc = subprocess.Popen(
        [mlflow, "server", "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=open(folder / "server.log", "a"), stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        wait_for(lambda: _healthy(f"http://127.0.0.1:{port}/health") or proc.poll() is not None,
                 120, f"mlflow server on port {port}", every_s=0.5)
        assert proc.poll() is None, (folder / "server.log").read_text()[-2000:]
        yield f"http://127.0.0.1:{port}"
    finally:
        kill_group(proc)
        proc.wait(timeout=30)


def _healthy(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False
