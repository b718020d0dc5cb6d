"""The lease of a sweep on S3 or an S3-compatible store: an object created only if absent,
renewed by its holder, taken over only when its holder is gone.

pyarrow's S3 filesystem, which writes the sweep, drops the conditional headers
(tests/test_object_storage.py shows it), so the lease speaks S3 through boto3, with the
same endpoint, scheme and region as the filesystem and the same credentials chain
(environment, ~/.aws, instance role). Every write of the lease is conditional: creation
`If-None-Match: *` (two drivers cannot both create it), renewal and take-over `If-Match`
the version read (a lease taken over is noticed by the old holder, and two drivers
cannot take over the same stale lease). A store has no process to watch, so the holder
rewrites its lease every RENEW_S; a lease not rewritten for STALE_S, or one whose holder
ran on this host under a pid that is gone, has lost its holder and is taken over with a
warning. Ages are the store's own clock (its Date header against the object's
Last-Modified), never this host's.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import pyarrow.fs as pafs

from orchestrator.errors import OrchestratorError, StorageFailed, SweepBusy, first_line
from orchestrator.results.storage import Location

# the holder rewrites its lease this often
RENEW_S = 20.0
# a lease not rewritten for this long has lost its holder: six renewals missed, so a
# slow store or a driver paused for a minute is not taken for dead
STALE_S = 120.0


@dataclass(frozen=True)
class Held:
    """A lease as read from the store."""

    holder: dict
    etag: str
    age_s: float  # since its last write, on the store's clock

    def gone(self) -> str | None:
        """Why the holder is gone ('not renewed for 300 s'), or None while it may live."""
        if self.age_s > STALE_S:
            return f"not renewed for {self.age_s:.0f} s"
        pid = self.holder.get("pid")
        if self.holder.get("host") == platform.node() and isinstance(pid, int) \
                and not _alive(pid):
            return f"its process (pid {pid} on this host) is gone"
        return None

    def who(self) -> str:
        h = self.holder
        return (f"`sweep {h.get('command', '?')}` (pid {h.get('pid', '?')} on "
                f"{h.get('host', '?')}, since {h.get('since', '?')}, renewed "
                f"{self.age_s:.0f} s ago)")


def is_s3(folder: Location) -> bool:
    return isinstance(folder.fs, pafs.S3FileSystem)


class ObjectLease:
    """The lease object of the sweep in `folder` (on an S3 filesystem): `.NAME.lease`
    beside the sweep's folder, as on a local one."""

    def __init__(self, folder: Location):
        bucket, _, prefix = folder.parent.path.partition("/")
        self.bucket = bucket
        self.key = f"{prefix}/.{folder.name}.lease" if prefix else f".{folder.name}.lease"
        self.where = f"s3://{bucket}/{self.key}"
        self.client = _client(folder.fs)
        self._etag: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # -- reading ---------------------------------------------------------------------
    def read(self) -> Held | None:
        from botocore.exceptions import ClientError

        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise self._failed("read", exc) from None
        except Exception as exc:  # no network, no endpoint: botocore's own kinds
            raise self._failed("read", exc) from None
        try:
            holder = json.loads(got["Body"].read() or b"{}")
        except ValueError:
            holder = {}
        now = got["ResponseMetadata"]["HTTPHeaders"].get("date")
        now_s = parsedate_to_datetime(now).timestamp() if now else time.time()
        return Held(holder if isinstance(holder, dict) else {}, got["ETag"],
                    max(0.0, now_s - got["LastModified"].timestamp()))

    def live_holder(self) -> Held | None:
        """The lease, when a holder that may be alive has it."""
        held = self.read()
        return held if held is not None and held.gone() is None else None

    # -- holding ---------------------------------------------------------------------
    def take(self, command: str, warn: Callable[[str], None]) -> None:
        """Create the lease, or take over one whose holder is gone; else SweepBusy."""
        self.warn = warn
        self.holder = {"command": command, "pid": os.getpid(), "host": platform.node(),
                       "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "token": uuid.uuid4().hex}
        if self._put(IfNoneMatch="*"):
            self._start_renewing()
            return
        held = self.read()
        if held is None:  # released between the two requests: try once more
            if self._put(IfNoneMatch="*"):
                self._start_renewing()
                return
            held = self.read()
        why = held.gone() if held else None
        if held is None or why is None or not self._put(IfMatch=held.etag):
            raise SweepBusy(self.refusal(held))
        warn(f"lease: {self.where} was held by {held.who()}; {why}: taken over")
        self._start_renewing()

    def release(self) -> None:
        """Stop renewing and delete the lease, if it is still this driver's."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=30)
        if self._etag is None:
            return
        with contextlib.suppress(Exception):  # taken over, or a store gone: nothing to do
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self._etag)

    def refusal(self, held: Held | None) -> str:
        who = held.who() if held else "another driver"
        name = self.key.rsplit("/", 1)[-1][1:-len(".lease")]
        return (f"name: sweep {name!r} is being written by {who}; one writer at a time: "
                f"wait for it to end, or choose another --name (lease: {self.where})")

    # -- the store's side ------------------------------------------------------------
    def _put(self, **condition: str) -> bool:
        """Write the lease under `condition`; False when the store says it does not hold
        (someone else's lease is there, or a newer version of it)."""
        from botocore.exceptions import ClientError

        body = json.dumps({**self.holder, "renewed": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        try:
            put = self.client.put_object(Bucket=self.bucket, Key=self.key,
                                         Body=body.encode(), ContentType="application/json",
                                         **condition)
        except ClientError as exc:
            # 412: the condition failed; 409: another conditional write of it in flight
            if _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict",
                              "409"):
                return False
            raise self._failed("write", exc) from None
        except Exception as exc:
            raise self._failed("write", exc) from None
        self._etag = put["ETag"]
        return True

    def _start_renewing(self) -> None:
        self._renewer = threading.Thread(target=self._renew_until_released, name="sweep-lease",
                                         daemon=True)
        self._renewer.start()

    def renew(self) -> bool:
        """Rewrite the lease while it is this driver's; False, with one warning, once
        another driver has taken it over (this one was taken for gone)."""
        if self._etag is None:
            return False
        try:
            if self._put(IfMatch=self._etag):
                return True
        except OrchestratorError:
            return True  # the store is unreachable for now: try again next time
        self._etag = None  # not ours to delete any more
        self.warn(f"lease: {self.where} was taken over by another driver (this one was "
                  "taken for gone); two drivers may now write this sweep")
        return False

    def _renew_until_released(self) -> None:
        while not self._stop.wait(RENEW_S) and self.renew():
            pass

    def _failed(self, what: str, exc: BaseException) -> StorageFailed:
        return StorageFailed(f"storage: cannot {what} the sweep's lease {self.where} "
                             f"({first_line(exc)})")


@contextlib.contextmanager
def object_lease(folder: Location, command: str,
                 warn: Callable[[str], None]) -> Iterator[None]:
    lease = ObjectLease(folder)
    lease.take(command, warn)
    try:
        yield
    finally:
        lease.release()


def _client(fs: pafs.S3FileSystem):
    """A boto3 S3 client for the store `fs` talks to."""
    import boto3
    from botocore.config import Config

    options = fs.__reduce__()[1][0]  # pyarrow's own constructor arguments
    endpoint = options.get("endpoint_override") or None
    if endpoint and "://" not in endpoint:
        endpoint = f"{options.get('scheme') or 'https'}://{endpoint}"
    # checksums only where required: S3-compatible stores that predate S3's default
    # CRC checksums (boto3 >= 1.36) refuse them
    config = Config(retries={"max_attempts": 3}, connect_timeout=10, read_timeout=20,
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required")
    keys = {"aws_access_key_id": options.get("access_key"),
            "aws_secret_access_key": options.get("secret_key"),
            "aws_session_token": options.get("session_token")}
    return boto3.client("s3", endpoint_url=endpoint, region_name=options.get("region") or None,
                        config=config, **{k: v for k, v in keys.items() if v})


def _code(exc) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
