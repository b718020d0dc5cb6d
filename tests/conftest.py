"""Fixtures: ONE real Ray instance for every integration test of the session; and the
fast lane's guard. A test that starts Ray (this Ray, a cluster, an embedded one) or
runs the console script or a benchmark in a subprocess is marked `slow`; the fast lane,
`pytest -m "not slow"`, starts none of them, and an unmarked test that tries is failed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GUARD = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def ray_address():
    """A local Ray (2 CPUs) started by this test session and shut down at its end;
    in-process sweeps reuse it and CLI subprocesses join it with --address."""
    import ray

    context = ray.init(address="local", num_cpus=2, include_dashboard=False,
                       log_to_driver=False)
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


def pytest_collection_modifyitems(config, items):
    """A test that needs the session's Ray (directly or through a fixture) is slow."""
    unmarked = [item.nodeid for item in items
                if "ray_address" in item.fixturenames and not item.get_closest_marker("slow")]
    if unmarked:
        raise pytest.UsageError("these tests start Ray (ray_address) but are not marked "
                                "slow:\n  " + "\n  ".join(unmarked))


def _slow_process(args) -> str | None:
    """What a command line starts that only slow tests may: the console script, Ray's
    CLI, Ray's own servers (whoever starts Ray in-process starts those) or a benchmark;
    None for anything else."""
    argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
    if not argv:
        return None
    program = Path(os.fsdecode(argv[0])).name
    if program in ("sweep", "ray", "gcs_server", "raylet"):
        return f"`{program}`"
    if len(argv) > 2 and argv[1] == "-m" and str(argv[2]).startswith("bench."):
        return f"`python -m {argv[2]}`"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before a fast test and its fixtures are set up: ray.init and the slow
    subprocesses fail it (with an exception no `except Exception` swallows), and the
    attempt is recorded in case something swallows that too."""
    if item.get_closest_marker("slow"):
        return
    patch = pytest.MonkeyPatch()
    tried: list[str] = []
    item.stash[GUARD] = {"patch": patch, "tried": tried, "ray": "ray" in sys.modules}

    def refuse(what: str):
        tried.append(what)
        pytest.fail(f"{what} in a test not marked slow: mark it @pytest.mark.slow",
                    pytrace=False)

    if "ray" in sys.modules:
        patch.setattr(sys.modules["ray"], "init", lambda *a, **k: refuse("ray.init"))
    real_init = subprocess.Popen.__init__

    def popen(self, args, *rest, **kwargs):
        started = _slow_process(args)
        if started:
            refuse(f"a subprocess running {started}")
        real_init(self, args, *rest, **kwargs)

    patch.setattr(subprocess.Popen, "__init__", popen)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    result = yield
    guard = item.stash.get(GUARD, None)
    if guard is not None:
        guard["patch"].undo()
        ray = sys.modules.get("ray")
        if not guard["ray"] and ray is not None and ray.is_initialized():
            guard["tried"].append("ray.init (after importing ray)")
            ray.shutdown()
        if guard["tried"]:
            pytest.fail(f"{item.nodeid} is not marked slow but tried: "
                        + ", ".join(guard["tried"]), pytrace=False)
    return result
