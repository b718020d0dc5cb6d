"""Credentials never ride inside a URI.

A storage URI (`s3://KEY:SECRET@bucket/...`) or an MLflow URI (`https://user:password@host`)
is printed in the plan and in every `sweep resume ...` hint, and written into sweep.json,
Tune's state files and MLflow's spec artifact. So one that carries a secret is refused
where it enters (the spec, --set, --storage, --mlflow-uri, a NAME_OR_PATH), with one line
that names what to use instead and never echoes the URI.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from orchestrator.errors import OrchestratorError

STORE_CREDENTIALS = {
    "s3": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, or "
          "~/.aws/credentials (AWS_PROFILE picks a profile)",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS (a service account's key file) or "
          "`gcloud auth application-default login`",
}
STORE_CREDENTIALS["gcs"] = STORE_CREDENTIALS["gs"]
MLFLOW_CREDENTIALS = {
    "http": "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or "
            "MLFLOW_TRACKING_TOKEN) in the environment",
    "postgresql": "PGPASSWORD in the environment or ~/.pgpass",
    "mysql": "an option file (~/.my.cnf, named by ?read_default_file=)",
}
MLFLOW_CREDENTIALS["https"] = MLFLOW_CREDENTIALS["http"]


def _scheme(uri: str) -> str:
    return urlsplit(uri).scheme.split("+")[0].lower()


def has_password(uri: str) -> bool:
    """Does `uri` carry `user:secret@` before its host? Also when the secret holds a raw
    '/', '?' or '#' (an AWS secret often holds a '/'), which ends the authority early."""
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        return ":" in netloc.rpartition("@")[0]
    _, colon, port = netloc.rpartition(":")
    after = uri.split(netloc, 1)[1] if netloc else ""
    return bool(colon) and not port.isdigit() and "@" in after


def has_user(uri: str) -> bool:
    return "@" in urlsplit(uri).netloc


def storage_problem(uri: str) -> str | None:
    """Why an object store URI may not be a sweep's storage (credentials in it: pyarrow
    reads a user there as the access key, a password as the secret key), or None."""
    if "://" not in uri or not (has_user(uri) or has_password(uri)):
        return None
    instead = STORE_CREDENTIALS.get(_scheme(uri), "the store's own environment variables "
                                                  "or credential files")
    return ("the URI carries credentials (KEY:SECRET@ before the bucket), which would be "
            "printed and written into sweep.json and Tune's files: give the URI without "
            f"them, and the credentials through {instead}")


def refuse_storage_credentials(uri: str, option: str) -> None:
    """`storage_problem` as one line naming the option (--storage, NAME_OR_PATH)."""
    problem = storage_problem(uri)
    if problem:
        raise OrchestratorError(f"{option}: {problem}")


def mlflow_problem(uri: str) -> str | None:
    """Why an MLflow tracking URI may not be used (a password in it), or None."""
    if not has_password(uri):
        return None
    instead = MLFLOW_CREDENTIALS.get(_scheme(uri), "the database's own credential file, or "
                                                   "serve it through `mlflow server`")
    return ("carries a password (user:password@), which would be printed and written into "
            "sweep.json and MLflow's spec artifact: give the URI without it, and the "
            f"credentials through {instead}")
