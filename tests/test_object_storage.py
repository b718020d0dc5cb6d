"""A sweep whose storage is an `s3://` URI on a real S3-compatible server (moto's server
mode, on 127.0.0.1, started and ended by the test): run, interrupt, resume, and read
the tables back with export and ls."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pyarrow.fs as pafs
import pytest

from orchestrator.errors import OrchestratorError
from orchestrator.results import schema
from orchestrator.results.folder import read_trials
from orchestrator.results.storage import open_storage
from tests.faults import answers, ended_at_exit, free_port, wait_for
from tests.helpers import REPO, SWEEP, heard, tiny_spec, write_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3():
    """(storage URI, environment with credentials) of a moto S3 server on 127.0.0.1."""
    # this venv's server first (its moto is the one pinned for the tests), then PATH's
    server = (shutil.which("moto_server", path=os.path.dirname(sys.executable))
              or shutil.which("moto_server"))
    if server is None:
        pytest.skip("moto's server is not installed (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for(lambda: answers(port), 60, "the S3 server")
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_EC2_METADATA_DISABLED": "true"}
        uri = (f"s3://sweeps-test/runs?endpoint_override=127.0.0.1:{port}&scheme=http"
               "&region=us-east-1&allow_bucket_creation=true")
        create = ("import pyarrow.fs as f, sys; fs, p = f.FileSystem.from_uri(sys.argv[1]); "
                  "fs.create_dir(p.split('/')[0])")
        subprocess.run([sys.executable, "-c", create, uri], env=env, check=True, timeout=60)
        yield uri, env
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@contextlib.contextmanager
def credentials(env: dict):
    """The store's credentials in this process's environment, as a client has them."""
    old = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update({k: env[k] for k in old})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def objects(uri: str, env: dict, key: str) -> bytes:
    """One object of the store, read with pyarrow as any client would."""
    with credentials(env):
        fs, path = pafs.FileSystem.from_uri(uri)
        with fs.open_input_stream(f"{path}/{key}") as stream:
            return stream.readall()


def trials_on_s3(uri: str, env: dict, name: str) -> pd.DataFrame | None:
    """The trials table as a reader sees it mid-run: trials.parquet and its parts."""
    with credentials(env):
        return read_trials(open_storage(uri) / name / schema.RESULTS_DIR)


def test_run_interrupt_resume_and_read_back_on_s3(s3, tmp_path):
    uri, env = s3
    spec = tiny_spec(tmp_path, name="on-s3", num_samples=6, max_concurrent_trials=2)
    spec["train"].update(dataset={"name": "synthetic", "n_samples": 20000, "n_features": 20},
                         model={"name": "mlp", "hidden": 64, "depth": 2}, epochs=6,
                         batch_size=64, early_stopping={"patience": None})
    path = write_spec(tmp_path, spec)

    # an embedded Ray: its workers inherit the credentials of the command
    proc = subprocess.Popen([SWEEP, "run", str(path), "--storage", uri, "--quiet"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    with ended_at_exit(proc):
        def two_ended():
            try:
                trials = trials_on_s3(uri, env, "on-s3")
            except (OSError, ValueError, OrchestratorError):  # a part removed mid-read
                return proc.poll() is not None
            if trials is None:
                return proc.poll() is not None
            return int(trials[schema.STOP_REASON].notna().sum()) >= 2 or proc.poll() is not None
        wait_for(two_ended, 180, "two trials to end, on S3", every_s=0.5)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err[-3000:]  # four trials were still to run

    resumed = subprocess.run([SWEEP, "resume", "on-s3", "--storage", uri, "--quiet"], cwd=REPO,
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    for table in ("trials", "history"):
        out = tmp_path / f"{table}.parquet"
        exported = subprocess.run([SWEEP, "export", "on-s3", "--storage", uri, "--table", table,
                                   "-o", str(out)], env=env, capture_output=True, text=True,
                                  timeout=120)
        assert exported.returncode == 0, exported.stderr
    trials, history = (pd.read_parquet(tmp_path / "trials.parquet"),
                       pd.read_parquet(tmp_path / "history.parquet"))
    assert len(trials) == 6 and (trials[schema.STOP_REASON] == "completed").all()
    assert not history.duplicated(list(schema.HISTORY_KEY)).any() and len(history) == 36
    listed = subprocess.run([SWEEP, "ls", "--storage", uri], env=env, capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 0 and "on-s3" in listed.stdout and "finished" in listed.stdout
    # Tune's experiment state is in the store next to the results
    assert objects(uri, env, "on-s3/tuner.pkl")


def test_pyarrow_drops_conditional_writes_so_the_lease_speaks_boto3(s3):
    """Why the lease on S3 goes through boto3 (results/object_lease.py): pyarrow's S3
    filesystem drops an `If-None-Match: *` header (unknown metadata keys are ignored), so
    a second create-if-absent write replaces the first. Should this start failing,
    pyarrow sends it, and the lease could do without boto3."""
    uri, env = s3
    with credentials(env):
        where = open_storage(uri)
        path = f"{where.path}/.lease-probe"
        for holder in (b"first", b"second"):
            with where.fs.open_output_stream(path, metadata={"If-None-Match": "*"}) as out:
                out.write(holder)
        with where.fs.open_input_stream(path) as stream:
            assert stream.readall() == b"second"


HOLD_LEASE = """
import sys, time
from orchestrator.results.lease import sweep_lease
from orchestrator.results.storage import open_storage
with sweep_lease(open_storage(sys.argv[1]) / sys.argv[2], "run"):
    print("held", flush=True)
    time.sleep(300)
"""


def test_one_writer_per_sweep_on_s3(s3, tmp_path):
    """A real second process holds the lease of a sweep on S3, as a running `sweep run`
    does: `run` and `submit` (and `submit --resume`) of that name are one line naming it
    (exit 2), before Ray or the cluster is reached. Killed with SIGKILL (it could not
    delete its lease), the holder is gone by its pid on this host and the next driver
    takes the lease over, saying so."""
    from orchestrator.results.lease import is_held, sweep_lease

    uri, env = s3
    spec_path = write_spec(tmp_path, tiny_spec(tmp_path, name="shared-s3"))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LEASE, uri, "shared-s3"], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        # nothing listens at the cluster's address: submit is refused before it calls
        nowhere = f"http://127.0.0.1:{free_port()}"
        for command in (["run", str(spec_path), "--quiet"],
                        ["submit", str(spec_path), "--address", nowhere],
                        ["submit", "--resume", "shared-s3", "--address", nowhere]):
            refused = subprocess.run([SWEEP, *command, "--storage", uri], cwd=REPO, env=env,
                                     capture_output=True, text=True, timeout=120)
            assert refused.returncode == 2, (command, refused.stderr)
            line = refused.stderr.strip()
            assert "\n" not in line and line.startswith(
                "error: name: sweep 'shared-s3' is being written by `sweep run` "
                f"(pid {holder.pid} on "), line
            assert "one writer at a time" in line and "renewed" in line
        with credentials(env):
            assert is_held(open_storage(uri) / "shared-s3") is True
            assert not (open_storage(uri) / "shared-s3").exists()  # nothing was written
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with credentials(env), heard() as warnings:
        folder = open_storage(uri) / "shared-s3"
        assert is_held(folder) is False  # its lease is there, its holder is not
        with sweep_lease(folder, "resume"):
            assert is_held(folder) is True
        assert is_held(folder) is False
        assert not (open_storage(uri) / ".shared-s3.lease").exists()  # released: deleted
    assert len(warnings) == 1 and f"its process (pid {holder.pid} on this host) is gone" \
        in warnings[0] and "taken over" in warnings[0]


def test_an_s3_lease_not_renewed_is_taken_over_and_its_old_holder_hears_of_it(
        s3, monkeypatch):
    """Leases of two drivers in this process (the pid check cannot tell them apart): the
    first renews once an hour, so its lease grows stale on the store's clock; the second
    takes it over; the first's next renewal finds it taken and warns."""
    from orchestrator.results import object_lease
    from orchestrator.results.object_lease import ObjectLease

    uri, env = s3
    monkeypatch.setattr(object_lease, "RENEW_S", 3600.0)
    with credentials(env), heard() as said:
        folder = open_storage(uri) / "stale"
        first, second = ObjectLease(folder), ObjectLease(folder)
        first.take("run")
        with pytest.raises(OrchestratorError, match="is being written by `sweep run`"):
            ObjectLease(folder).take("run")  # fresh: refused
        assert said == []
        monkeypatch.setattr(object_lease, "STALE_S", 1.0)
        time.sleep(2.5)  # over STALE_S without a renewal (the store counts in seconds)
        second.take("resume")
        (taken,) = said
        assert "not renewed for" in taken and "taken over" in taken
        assert first.renew() is False  # its next renewal finds the lease taken
        assert len(said) == 2 and "was taken over by another driver" in said[1]
        assert first.lost and "taken over" in first.lost  # the driver's guard stops on it
        first.release()  # no longer its lease: left alone
        assert ObjectLease(folder).read().holder["command"] == "resume"
        # a write of the holder's own whose answer was lost, retried by the client, meets
        # its own lease (412): it is the holder's, not someone else's
        assert second._put(IfNoneMatch="*") is True
        assert second.renew() is True and len(said) == 2
        second.release()
        assert ObjectLease(folder).read() is None


def test_an_s3_lease_of_a_dead_pid_elsewhere_is_not_taken_for_gone(s3):
    """A pid names one process only on one machine's boot and pid namespace: a lease
    written from another (a container with the host's name, another boot) whose pid is
    not alive here is still held until it goes stale."""
    import json

    import boto3

    from orchestrator.results.object_lease import ObjectLease, process_space

    uri, env = s3
    endpoint = "http://" + uri.split("endpoint_override=")[1].split("&")[0]
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    with credentials(env):
        folder = open_storage(uri) / "elsewhere"
        lease = ObjectLease(folder)
        for where, gone in ((process_space() + "-other-container", False),
                            (process_space(), True)):
            client.put_object(Bucket=lease.bucket, Key=lease.key, Body=json.dumps(
                {"command": "run", "pid": pid, "host": "x", "where": where}).encode())
            assert (lease.read().gone() is not None) is gone


def test_credentials_in_a_storage_or_mlflow_uri_are_refused_and_written_nowhere(s3, tmp_path):
    """The keys in the URI work against this server (it takes any): refused anyway,
    before anything is printed or written, by the real console script in a fresh shell;
    then no file written on this machine (the project, HOME) and no object in the bucket
    holds the secret."""
    from tests.helpers import newcomer_env

    uri, env = s3
    secret = "SECRETzY/9k+EXAMPLEsecretKEY"  # with a '/', as AWS secrets often are
    with_keys = uri.replace("s3://", f"s3://testing:{secret}@", 1).replace("/runs?", "/keys?")
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    env = {**newcomer_env(home), **{k: v for k, v in env.items() if k.startswith("AWS_")}}
    spec = tiny_spec(work, name="with-keys")
    runs = [
        ("--storage", ["run", str(write_spec(work, spec)), "--storage", with_keys, "--quiet"]),
        ("storage", ["run", str(write_spec(work, {**spec, "storage": with_keys}, "s.yaml"))]),
        ("tracking.mlflow.uri", [
            "run", str(write_spec(work, {**spec, "tracking": {"mlflow": {
                "uri": f"http://alice:{secret}@127.0.0.1:{free_port()}"}}}, "m.yaml")),
            "--storage", uri, "--quiet"]),
        ("--storage", ["resume", "with-keys", "--storage", with_keys]),
        ("--storage", ["ls", "--storage", with_keys]),
    ]
    for option, args in runs:
        result = subprocess.run([SWEEP, *args], cwd=work, env=env, capture_output=True,
                                text=True, timeout=180)
        assert result.returncode == 2, (option, result.stderr[-3000:])
        line = result.stderr.strip()
        assert "\n" not in line and f"{option}: " in line, line
        assert secret not in result.stdout + result.stderr
        assert secret.split("/")[0] not in result.stdout + result.stderr
        assert ("AWS_ACCESS_KEY_ID" if "mlflow" not in option else
                "MLFLOW_TRACKING_USERNAME") in line
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    # only the two specs the user wrote it into hold it: nothing the commands wrote
    assert {p.name for p in written if secret.encode() in p.read_bytes()} == {"s.yaml",
                                                                               "m.yaml"}
    with credentials(env):
        fs, path = pafs.FileSystem.from_uri(uri)
        bucket = path.split("/")[0]
        objects_ = [i.path for i in fs.get_file_info(pafs.FileSelector(bucket, recursive=True))
                    if i.type == pafs.FileType.File]
        assert not [o for o in objects_ if "with-keys" in o]  # nothing of the sweep began
        for key in objects_:
            with fs.open_input_stream(key) as stream:
                assert secret.encode() not in stream.readall(), key
