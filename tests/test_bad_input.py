"""Bad input ends in one line and exit code 2 (or 3 for a cluster that refuses us),
never a traceback or a screenful: undecodable specs, YAML that expands without end,
over-long values, and a Jobs API that refuses the token."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator

import pytest

from tests.helpers import heard, invoke


def one_line_error(*args: str, code: int = 2) -> str:
    result = invoke(*args)
    assert result.exit_code == code, result.output
    text = result.stderr.strip()
    assert text.startswith("error: ") and "\n" not in text and "Traceback" not in text
    return text


@pytest.mark.parametrize("content, message", [
    (b"name: caf\xe9\n", "is not UTF-8 text (byte 0xe9 at offset 9); save it as UTF-8"),
    (bytes(range(256)), "is not UTF-8 text (byte 0x80 at offset 128)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "is not UTF-8 text (byte 0x89 at offset 0)"),
])
def test_a_spec_that_is_not_text_is_one_line(tmp_path, content, message):
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    assert message in one_line_error("validate", str(path))


def test_yaml_that_expands_without_end_is_refused_at_once(tmp_path):
    """A 1 KB "billion laughs": each alias list repeats the one before nine times."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    path = tmp_path / "spec.yaml"
    path.write_text("\n".join(lines) + "\nname: bomb\ntrain:\n  epochs: *i\n")
    assert path.stat().st_size < 1024
    text = one_line_error("validate", str(path))
    assert "expands to more than 100,000 values (YAML aliases)" in text


def test_a_few_aliases_still_load(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("defaults: &lr {loguniform: [0.001, 0.1]}\nname: ok\n"
                    "search_space:\n  optimizer.lr: *lr\n")
    result = invoke("validate", str(path))
    assert result.exit_code == 2 and "defaults: is not a known key" in result.stderr
    path.write_text("name: ok\nsearch_space:\n  optimizer.lr: &lr {loguniform: [0.001, 0.1]}"
                    "\n  optimizer.weight_decay: *lr\n")
    assert invoke("validate", str(path)).exit_code == 0


@pytest.mark.parametrize("spec", [
    'name: "{}"\n'.format("a b" * 100_000),
    "name: x\ntrain:\n  epochs: [{}]\n".format(", ".join(["1"] * 20_000)),
    "name: x\nsearch_space:\n  optimizer.lr: {{choice: [{}]}}\n  batch_size: {{uniform: x}}\n"
    .format(", ".join(["0.1"] * 50_000)),
])
def test_an_over_long_value_is_quoted_short(tmp_path, spec):
    path = tmp_path / "spec.yaml"
    path.write_text(spec)
    assert len(one_line_error("validate", str(path))) < 1500


def test_a_spec_of_megabytes_is_refused_before_parsing(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("name: x\n# " + "x" * 2**21 + "\n")
    assert "is 2.0 MiB; a spec is a few KB (at most 1 MiB)" in one_line_error("validate",
                                                                             str(path))


class _Refuses(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(401)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"Unauthorized: Missing or invalid authentication token")

    do_POST = do_GET

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def refusing_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 that answers 401 to everything, as a Jobs API
    with token auth answers a client with no token or the wrong one."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuses)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("token", [None, "wrong"])
def test_a_jobs_api_that_refuses_the_token_says_where_the_token_goes(token, tmp_path):
    with refusing_server() as address:
        result = invoke("jobs", "--address", address,
                        env={"RAY_AUTH_TOKEN": token, "RAY_AUTH_TOKEN_PATH": None,
                             "HOME": str(tmp_path)})
    assert result.exit_code == 3, result.output
    text = result.stderr.strip()
    which = "no token was sent" if token is None else "the token sent is not the cluster's"
    assert f"refused this client ({which}" in text
    assert "RAY_AUTH_TOKEN" in text and "\n" not in text and "did not answer" not in text


@pytest.mark.parametrize("csv, message", [
    ("a,b,label\n" + "1,2,0\n1,nan,1\n" * 20,
     "train.dataset.path: {path}: feature column 'b' holds nan at row 1; features must be "
     "finite numbers"),
    ("a,b,label\n" + "1,2,0\n1,3,\n" * 20, "train.dataset.label: column 'label' of {path} is "
                                           "empty at row 1"),
    ("a,b,label\n", "train.dataset.path: {path} has 0 rows: with val_fraction 0.2 a split "
                    "keeps fewer than 5"),
    ("a,b,y\n" + "1,2,0\n" * 40, "train.dataset.label: column 'label' is not in {path} "
                                 "(columns: a, b, y)"),
    ("a,b,label\n" + "1,2,0\n" * 40, "train.dataset.label: column 'label' of {path} holds one "
                                     "class (0); a classification needs two or more"),
    ("a,b,label\n" + "x,y,0\nz,w,1\n" * 20, "train.dataset.path: {path} has no numeric "
                                            "feature columns"),
])
def test_bad_table_data_is_refused_before_ray_starts(tmp_path, csv, message):
    from tests.helpers import tiny_spec, write_spec

    table = tmp_path / "table.csv"
    table.write_text(csv)
    spec = tiny_spec(tmp_path)
    spec["train"]["dataset"] = {"name": "table", "path": str(table)}
    text = one_line_error("run", str(write_spec(tmp_path, spec)), "--quiet")
    assert text == f"error: {message.format(path=table)}"
    assert not (tmp_path / "sweeps").exists()  # refused before anything was written


def test_a_missing_table_is_refused_before_ray_starts(tmp_path):
    from tests.helpers import tiny_spec, write_spec

    spec = tiny_spec(tmp_path)
    spec["train"]["dataset"] = {"name": "table", "path": str(tmp_path / "gone.csv")}
    text = one_line_error("run", str(write_spec(tmp_path, spec)), "--quiet")
    assert text == f"error: train.dataset.path: {tmp_path / 'gone.csv'} is not a file"


def test_a_second_writer_of_a_sweep_is_refused_while_the_first_lives(tmp_path):
    """A real second process holds the sweep's lease (as a running `sweep run` does):
    `run` and `resume` of that name are one line naming it; once it is gone (killed
    with SIGKILL, as a crashed driver is), the lease is free again."""
    import signal
    import subprocess
    import sys

    from tests.helpers import tiny_spec, write_spec

    spec_path = write_spec(tmp_path, tiny_spec(tmp_path, name="shared"))
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from orchestrator.results.lease import sweep_lease\n"
         "from orchestrator.results.storage import open_storage\n"
         "with sweep_lease(open_storage(sys.argv[1]) / 'shared', 'run'):\n"
         "    print('held', flush=True)\n"
         "    time.sleep(120)\n", str(tmp_path / "sweeps")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        text = one_line_error("run", str(spec_path), "--quiet")
        assert text.startswith("error: name: sweep 'shared' is being written by `sweep run` "
                               f"(pid {holder.pid} on ")
        assert "one writer at a time" in text
        assert not (tmp_path / "sweeps" / "shared").exists()  # nothing was written
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    from orchestrator.results.lease import sweep_lease
    from orchestrator.results.storage import open_storage

    with sweep_lease(open_storage(str(tmp_path / "sweeps")) / "shared", "run"):
        pass  # the kernel released the dead holder's lease


def test_export_and_report_to_a_place_that_cannot_be_written_is_one_line(tmp_path):
    """A sweep's tables written by the library (no Ray), then exported and reported under
    a path whose parent is a file."""
    from orchestrator.results import schema
    from orchestrator.results.provenance import begin_segment, end_segment
    from orchestrator.results.tables import frames, write_history, write_trials
    from orchestrator.spec import spec_from_mapping
    from tests.helpers import tiny_spec

    spec = spec_from_mapping(tiny_spec(tmp_path, name="done"))
    results = tmp_path / "sweeps" / "done" / schema.RESULTS_DIR
    begin_segment(results, spec.resolved(), "run")
    history = {("t_00000", e): {"trial_id": "t_00000", "epoch": e, "train_loss": 1.0 / e,
                                "val_loss": 1.1 / e, "val_acc": 0.5 + e / 10}
               for e in (1, 2, 3)}
    trials, history_frame = frames(
        {"t_00000": {"trial_id": "t_00000", "status": "terminated",
                     "stop_reason": "completed", "epochs": 3}}, history, "val_acc", "max")
    write_trials(trials, results / schema.TRIALS_FILE, "val_acc")
    write_history(history_frame, results / schema.HISTORY_FILE)
    end_segment(results, spec.resolved(), status="finished", elapsed_s=1.0, trials_ended=1)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    storage = str(tmp_path / "sweeps")
    assert invoke("export", "done", "--storage", storage, "-o", str(tmp_path / "ok.csv")
                  ).exit_code == 0
    text = one_line_error("export", "done", "--storage", storage, "-o",
                          str(blocker / "x.csv"))
    assert text == f"error: -o: cannot write {blocker / 'x.csv'} ({blocker} is a file, not a " \
                   "folder)"
    text = one_line_error("report", "done", "--storage", storage, "--out", str(blocker / "r"))
    assert text == f"error: --out: cannot write {blocker / 'r'} ({blocker} is a file, not a " \
                   "folder)"


def test_a_failed_ray_start_points_at_this_processs_own_session_logs(tmp_path, monkeypatch):
    """Not `session_latest`: on a shared machine that is whichever session started last.
    Ray names a session it starts after the starting process's pid."""
    import os

    import ray._common.utils

    from orchestrator.engine.ray_session import _unavailable

    monkeypatch.setattr(ray._common.utils, "get_default_ray_temp_dir", lambda: str(tmp_path))
    text = str(_unavailable(RuntimeError("boom"), None))
    assert text == ("could not start Ray (RuntimeError: boom); Ray started no session (no "
                    "logs); run again with --debug for the traceback")
    ours = tmp_path / f"session_2026-01-01_10-00-00_000001_{os.getpid()}"
    (ours / "logs").mkdir(parents=True)
    other = tmp_path / "session_2026-01-01_10-00-05_000002_1"  # another job's, newer
    (other / "logs").mkdir(parents=True)
    (tmp_path / "session_latest").symlink_to(other)
    text = str(_unavailable(RuntimeError("boom"), None))
    assert text == (f"could not start Ray (RuntimeError: boom); Ray's logs are in "
                    f"{ours / 'logs'}; run again with --debug for the traceback")


def test_malformed_set_yaml_is_one_line_naming_the_set(tmp_path):
    from tests.helpers import tiny_spec, write_spec

    spec_path = write_spec(tmp_path, tiny_spec(tmp_path))
    text = one_line_error("validate", str(spec_path), "--set", "train.epochs={a: [1")
    assert text == ("error: --set: train.epochs: value is not valid YAML: expected ',' or ']', "
                    "but got '<stream end>' at column 7 (a string with YAML's special "
                    "characters goes in quotes: --set 'train.epochs=\"...\"')")


@pytest.mark.parametrize("args", [["--name", "-rf"], ["--name=-rf"], ["--set", "name=.hidden"],
                                  ["--set", "name=a b"]])
def test_a_name_that_is_refused_says_the_rule_and_why(tmp_path, args):
    from tests.helpers import tiny_spec, write_spec

    spec_path = write_spec(tmp_path, tiny_spec(tmp_path))
    text = one_line_error("run", str(spec_path), "--dry-run", *args)
    option = "--name" if args[0].startswith("--name") else "--set: name"
    assert text.startswith(f"error: {option}: is ")
    assert text.endswith("but must begin with a letter or digit, then letters, digits, '.', "
                         "'_' or '-' (it names the sweep's folder and is typed in commands: a "
                         "leading '-' would read as an option, a leading '.' would hide the "
                         "folder; spaces, '/' and other characters are not safe in a folder "
                         "name)")


@pytest.mark.parametrize("storage, message", [
    ("s3://b/x?bogus_option=1", "'s3://b/x?bogus_option=1' is not a storage URI pyarrow can "
                                "open (Unexpected query parameter in S3 URI: 'bogus_option')"),
    ("foo://x/y", "'foo://x/y' is not a storage URI pyarrow can open (Unrecognized filesystem "
                  "type in URI: foo://x/y)"),
])
def test_a_storage_uri_pyarrow_cannot_open_is_one_line_everywhere(tmp_path, storage, message):
    from tests.helpers import tiny_spec, write_spec

    spec_path = write_spec(tmp_path, tiny_spec(tmp_path))
    assert one_line_error("run", str(spec_path), "--storage", storage, "--quiet") == \
        f"error: storage: {message}"
    for args in (["ls"], ["report", "x"], ["export", "x", "-o", str(tmp_path / "x.csv")],
                 ["resume", "x"], ["track", "x"]):
        assert one_line_error(*args, "--storage", storage) == f"error: --storage: {message}"
    assert one_line_error("resume", storage) == f"error: NAME_OR_PATH: {message}"


def test_a_store_that_does_not_answer_is_one_line(tmp_path):
    from tests.faults import free_port

    storage = (f"s3://b/sweeps?endpoint_override=127.0.0.1:{free_port()}&scheme=http"
               "&region=us-east-1")
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
           "AWS_EC2_METADATA_DISABLED": "true"}
    result = invoke("ls", "--storage", storage, env=env)  # pyarrow retries: one command
    assert result.exit_code == 2, result.output
    text = result.stderr.strip()
    assert text.startswith("error: --storage: cannot reach s3://b/sweeps (") and \
        "\n" not in text, text


@pytest.mark.parametrize("storage, why", [
    ("/proc", "/proc (No such file or directory)"),  # a folder that takes no files
    ("/proc/sweeps", "/proc/sweeps (No such file or directory)"),
    ("/dev/null/sweeps", "/dev/null/sweeps (/dev/null is not a folder)"),
])
def test_a_storage_folder_that_takes_no_files_is_one_line_exit_4(tmp_path, storage, why):
    from tests.helpers import tiny_spec, write_spec

    spec_path = write_spec(tmp_path, tiny_spec(tmp_path))
    assert one_line_error("run", str(spec_path), "--storage", storage, "--quiet", code=4) == \
        f"error: storage: cannot write {why}; nothing was started: make room or make it " \
        "writable, then run the command again"


@pytest.mark.parametrize("out, why", [("/proc/lr", "No such file or directory: /proc/lr"),
                                      ("/dev/null/lr", "Not a directory: /dev/null/lr")])
def test_lr_find_to_a_folder_that_cannot_be_made_is_one_line_before_training(tmp_path, out,
                                                                              why):
    from tests.helpers import tiny_spec, write_spec

    spec_path = write_spec(tmp_path, tiny_spec(tmp_path))
    assert one_line_error("lr-find", str(spec_path), "--out", out) == \
        f"error: --out: cannot write {out} ({why})"


# -- a trial that no node can hold: one line at start, not "0 running" for good --------

@pytest.mark.parametrize("asked, nodes, message", [
    ({"cpu": 64, "gpu": 0}, [{"CPU": 2.0}],
     "resources.cpu: a trial asks for 64 CPU, but this Ray's only node has 2; lower "
     "resources.cpu"),
    ({"cpu": 1, "gpu": 1}, [{"CPU": 8.0}, {"CPU": 4.0, "GPU": 0.0}],
     "resources.gpu: a trial asks for 1 GPU, but the largest node of this Ray has 0; lower "
     "resources.gpu"),
    ({"cpu": 8, "gpu": 1}, [{"CPU": 64.0}, {"CPU": 4.0, "GPU": 1.0}],
     "resources: a trial asks for 8 CPU and 1 GPU on one node, but no node has them together "
     "(the nodes have: 64 CPU, 0 GPU; 4 CPU, 1 GPU); lower resources.cpu or resources.gpu"),
    ({"cpu": 0.5, "gpu": 0.25}, [{"CPU": 2.0, "GPU": 1.0}], None),
    ({"cpu": 2, "gpu": 0}, [{"CPU": 1.0}, {"CPU": 2.0}], None),
])
def test_what_no_node_can_hold_is_named(asked, nodes, message):
    from orchestrator.engine.capacity import capacity_problem

    assert capacity_problem(asked, nodes) == message


@pytest.mark.slow
def test_a_trial_no_node_can_hold_is_one_line_on_the_embedded_ray(tmp_path):
    from tests.helpers import sweep_cli, tiny_spec, write_spec

    path = write_spec(tmp_path, tiny_spec(tmp_path, name="huge"))
    result = sweep_cli("run", str(path), "--set", "resources.cpu=4096", "--quiet")
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: resources.cpu: a trial asks for 4096 CPU, but this Ray's "
                           "only node has ")
    assert not (tmp_path / "sweeps" / "huge").exists()  # nothing of the sweep written


@pytest.mark.slow
@pytest.mark.parametrize("key, value", [("cpu", 4096), ("gpu", 8)])
def test_a_trial_no_node_can_hold_is_one_line_on_a_joined_ray(tmp_path, ray_address, key,
                                                              value):
    """The session's Ray, joined as a cluster: no autoscaler runs there."""
    from tests.helpers import sweep_cli, tiny_spec, write_spec

    path = write_spec(tmp_path, tiny_spec(tmp_path, name="huge"))
    result = sweep_cli("run", str(path), "--address", ray_address, "--set",
                       f"resources.{key}={value}", "--quiet")
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: resources.{key}: a trial asks for {value} {key.upper()}, "
                           "but this Ray's only node has ")
    assert not (tmp_path / "sweeps" / "huge").exists()


@pytest.mark.slow
def test_where_an_autoscaler_may_add_the_node_it_is_a_warning(ray_address):
    from orchestrator.engine.capacity import check_capacity
    from orchestrator.spec.model import spec_from_mapping

    spec = spec_from_mapping({"name": "huge", "resources": {"cpu": 4096}})
    with heard() as said:
        check_capacity(spec, "Ray's autoscaler")
    (line,) = said
    assert line.startswith("warning: resources.cpu: a trial asks for 4096 CPU")
    assert line.endswith("unless Ray's autoscaler adds a node that can hold one, no trial "
                         "will start")


@pytest.mark.slow
def test_joining_a_token_cluster_without_a_token_is_one_line(tmp_path):
    """Ray's client without a token retried for 20 s and printed a C++ warning a second
    before our line (engine/ray_session.py asks the GCS once, with no token, first)."""
    import os
    import secrets
    import shutil
    import tempfile
    from pathlib import Path

    from tests.faults import RayNode, answers, free_port, wait_for
    from tests.helpers import newcomer_env, sweep_cli, tiny_spec, write_spec

    short = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # Ray's socket paths are short
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    head = RayNode.start(short / "head", "--head", f"--port={port}", "--num-cpus=1",
                         "--include-dashboard=false",
                         f"--dashboard-agent-listen-port={free_port()}",
                         f"--ray-client-server-port={free_port()}", env=env)
    try:
        wait_for(lambda: answers(port), 90, "the head's GCS")
        path = write_spec(tmp_path, tiny_spec(tmp_path, name="tokenless"))
        result = sweep_cli("run", str(path), "--address", f"127.0.0.1:{port}", "--quiet",
                           env=newcomer_env(tmp_path / "home"))  # no token anywhere
    finally:
        head.stop()
        shutil.rmtree(short, ignore_errors=True)
    assert result.returncode == 3, result.stderr[-3000:]
    assert result.stderr == (
        f"error: Ray refused this client at 127.0.0.1:{port} (the cluster uses token "
        "authentication, and no token was found to send); put the cluster's token in "
        "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token\n")
    assert not (tmp_path / "sweeps" / "tokenless").exists()
