"""Credentials inside a URI are refused wherever a URI enters (the spec's storage and
tracking.mlflow.uri, --set, --storage of every command, a NAME_OR_PATH, --mlflow-uri,
submit), with one line that names the option and what to use instead, never echoing the
secret, and nothing written. The same against a real S3 server: test_object_storage.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from orchestrator.spec.credentials import has_password, has_user
from tests.helpers import invoke, tiny_spec, write_spec

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY"  # AWS's own example: it holds a '/'
S3_URI = f"s3://AKIAIOSFODNN7EXAMPLE:{SECRET}@bucket/sweeps?region=us-east-1"
MLFLOW_URI = f"https://alice:{SECRET}@mlflow.example.org"
AWS = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, or ~/.aws/credentials"
MLFLOW = "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"


def a_sweep_folder(tmp_path: Path) -> Path:
    """sweeps/done: a sweep folder as `sweep run` leaves it (sweep.json with its spec)."""
    from orchestrator.spec import spec_from_mapping

    spec = spec_from_mapping(tiny_spec(tmp_path, name="done"))
    results = tmp_path / "sweeps" / "done" / "results"
    results.mkdir(parents=True)
    (results / "sweep.json").write_text(json.dumps({"spec": spec.resolved()}))
    return results.parent


def refused(*args: str, option: str, instead: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert SECRET not in result.output and SECRET.split("/")[0] not in result.output
    assert line.startswith(f"error: {option}: "), line
    assert instead in line
    return line


def every_file(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("args, option", [
    (["run", "{spec}", "--storage", S3_URI, "--dry-run"], "--storage"),
    (["run", "{spec}", "--set", f"storage={S3_URI}"], "--set: storage"),
    (["validate", "{spec}", "--set", f"storage={S3_URI}"], "--set: storage"),
    (["resume", "done", "--storage", S3_URI], "--storage"),
    (["ls", "--storage", S3_URI], "--storage"),
    (["report", "done", "--storage", S3_URI], "--storage"),
    (["export", "done", "-o", "{tmp}/t.csv", "--storage", S3_URI], "--storage"),
    (["track", "done", "--storage", S3_URI], "--storage"),
    (["resume", f"{S3_URI.split('?')[0]}/done"], "NAME_OR_PATH"),
    (["submit", "{spec}", "--address", "http://127.0.0.1:9", "--storage", S3_URI],
     "--storage"),
    (["submit", "--resume", "done", "--address", "http://127.0.0.1:9", "--storage", S3_URI],
     "--storage"),
])
def test_an_s3_uri_with_credentials_is_refused_at_every_door(tmp_path, monkeypatch, args,
                                                              option):
    monkeypatch.chdir(tmp_path)
    a_sweep_folder(tmp_path)
    spec = write_spec(tmp_path, tiny_spec(tmp_path))
    before = every_file(tmp_path)
    line = refused(*(a.format(spec=spec, tmp=tmp_path) for a in args), option=option,
                   instead=AWS)
    assert "the URI carries credentials" in line
    assert every_file(tmp_path) == before  # nothing written, nothing changed


def test_a_spec_whose_storage_or_mlflow_uri_carries_a_secret_is_refused(tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tiny_spec(tmp_path, storage=S3_URI)
    path = write_spec(tmp_path, spec)
    refused("validate", str(path), option=f"{path}: storage", instead=AWS)
    spec = tiny_spec(tmp_path, tracking={"mlflow": {"uri": MLFLOW_URI}})
    path = write_spec(tmp_path, spec)
    line = refused("run", str(path), option=f"{path}: tracking.mlflow.uri", instead=MLFLOW)
    assert "carries a password (user:password@)" in line
    line = refused("run", str(path), "--set", "tracking.mlflow.uri=htp://u:" + SECRET + "@h",
                   option="--set: tracking.mlflow.uri", instead="")  # before the scheme's
    assert not (tmp_path / "sweeps").exists()


def test_sweep_track_refuses_an_mlflow_uri_with_a_password(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = a_sweep_folder(tmp_path)
    before = every_file(folder)
    refused("track", "done", "--mlflow-uri", MLFLOW_URI, option="--mlflow-uri",
            instead=MLFLOW)
    line = refused("track", "done", "--mlflow-uri", f"postgresql://ml:{SECRET}@db/mlflow",
                   option="--mlflow-uri", instead="PGPASSWORD in the environment or ~/.pgpass")
    assert "carries a password" in line
    assert every_file(folder) == before


@pytest.mark.parametrize("uri, password, user", [
    ("s3://KEY:SECRET@bucket/x", True, True),
    (f"s3://KEY:{SECRET}@bucket/x", True, False),  # a raw '/' ends the authority early
    ("s3://KEY:se?cret@bucket/x", True, False),
    ("s3://KEY@bucket/x", False, True),
    ("s3://bucket/team@corp/x?region=us-east-1", False, False),
    ("s3://bucket/x?endpoint_override=127.0.0.1:9000&scheme=http", False, False),
    ("http://127.0.0.1:5000", False, False),
    ("https://mlflow.example.org/path@x", False, False),
    ("http://[::1]:5000/api", False, False),
    ("postgresql://ml@db:5432/mlflow", False, True),
    ("sqlite:///mlflow.db", False, False),
])
def test_credentials_are_told_from_hosts_ports_and_paths(uri, password, user):
    assert has_password(uri) is password
    assert has_user(uri) is user


def test_a_storage_without_credentials_still_loads(tmp_path):
    from orchestrator.spec import spec_from_mapping

    for storage in ("s3://bucket/team@corp/x?region=us-east-1", str(tmp_path / "a #2")):
        assert spec_from_mapping(tiny_spec(tmp_path, storage=storage)).storage == storage
    spec = tiny_spec(tmp_path, tracking={"mlflow": {"uri": "postgresql://ml@db/mlflow"}})
    assert spec_from_mapping(spec).tracking.mlflow.uri == "postgresql://ml@db/mlflow"
    # --storage is a string as given: a '#' in a folder's name is not a YAML comment
    path = write_spec(tmp_path, tiny_spec(tmp_path))
    result = invoke("run", str(path), "--storage", str(tmp_path / "a #2"), "--dry-run")
    assert f"storage     {tmp_path / 'a #2'}/tiny" in result.stdout
    assert yaml.safe_load(path.read_text())["storage"] == str(tmp_path / "sweeps")
