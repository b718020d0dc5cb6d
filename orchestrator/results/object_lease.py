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
from pathlib import Path

import pyarrow.fs as pafs

from orchestrator.errors import OrchestratorError, StorageFailed, SweepBusy, first_line, warn
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
        if self.holder.get("where") == process_space() and isinstance(pid, int) \
                and not _alive(pid):
            return f"its process (pid {pid} on this host) is gone"
        return None

    def who(self) -> str:
        h = self.holder
        return (f"`sweep {h.get('command', '?')}` (pid {h.get('pid', '?')} on "
                f"{h.get('host', '?')}, since {h.get('since', '?')}, renewed "
                f"{self.age_s:.0f} s ago)")


def process_space() -> str:
    """This machine's boot and pid namespace: a pid names the same process only within
    both (containers with the host's network share its hostname, not its pids)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{platform.node()}/{boot}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""  # not Linux: the pid test is not trusted, only staleness


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
        self.client = _client(folder.fs, self._failed)
        self._etag: str | None = None  # the version written last; None: not ours
        self._lock = threading.Lock()  # one request about our version at a time
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost: str | None = None  # why the lease is no longer this driver's

    # -- reading ---------------------------------------------------------------------
    def read(self) -> Held | None:
        from botocore.exceptions import ClientError

        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.key)
            body = got["Body"].read()
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise self._failed("read", exc) from None
        except Exception as exc:  # no network, no endpoint: botocore's own kinds
            raise self._failed("read", exc) from None
        try:
            holder = json.loads(body or b"{}")
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
    def take(self, command: str) -> bool:
        """Create the lease, or take over one whose holder is gone; else SweepBusy.
        False when the store cannot make a conditional write (then there is no lease,
        and a SweepWarning says so)."""
        self.holder = {"command": command, "pid": os.getpid(), "host": platform.node(),
                       "where": process_space(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "token": uuid.uuid4().hex}
        try:
            taken = self._put(IfNoneMatch="*")
            held = None if taken else self.read()
            if not taken and held is None:  # released between the two requests
                taken = self._put(IfNoneMatch="*")
                held = None if taken else self.read()
            why = held.gone() if held else None
            if not taken and held is not None and why is not None:
                taken = self._put(IfMatch=held.etag)
                if taken:
                    warn(f"lease: {self.where} was held by {held.who()}; {why}: taken over")
        except _NoConditionalWrites as exc:
            warn(f"lease: {self.where}: the store refuses conditional writes ({exc}), so "
                 "this sweep has no lease: do not run its name twice at once")
            return False
        if not taken:
            raise self.refusal(self.read())  # the holder as it is now
        self._renewer = threading.Thread(target=self._renew_until_released,
                                         name="sweep-lease", daemon=True)
        self._renewer.start()
        return True

    def release(self) -> None:
        """Stop renewing and delete the lease, if it is still this driver's."""
        self._stop.set()
        with self._lock:  # after a renewal in flight: its version is the one to delete
            if self._etag is None:
                return
            with contextlib.suppress(Exception):  # taken over, or a store gone
                self.client.delete_object(Bucket=self.bucket, Key=self.key,
                                          IfMatch=self._etag)
            self._etag = None

    def renew(self) -> bool:
        """Rewrite the lease while it is this driver's; False, with one warning and
        `lost` set, once another driver has taken it over (this one was taken for
        gone)."""
        with self._lock:
            if self._etag is None or self._stop.is_set():
                return False
            try:
                if self._put(IfMatch=self._etag):
                    return True
            except OrchestratorError:
                return True  # the store is unreachable for now: try again next time
            self._etag = None  # not ours to delete any more
        self.lost = (f"the lease {self.where} was taken over by another driver (this one "
                     f"was taken for gone: no renewal for {STALE_S:.0f} s)")
        warn(f"lease: {self.lost}; two drivers may now write this sweep")
        return False

    def _renew_until_released(self) -> None:
        while not self._stop.wait(RENEW_S) and self.renew():
            pass

    def refusal(self, held: Held | None) -> SweepBusy:
        name = self.key.rsplit("/", 1)[-1][1:-len(".lease")]
        return SweepBusy.held(name, held.holder if held else None, self.where,
                              held.age_s if held else None)

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
            code = _code(exc)
            # 412: the condition failed; 409: another conditional write of it in flight
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                # a write of ours that landed, its answer lost, retried by the client
                held = self.read()
                if held is not None and held.holder.get("token") == self.holder["token"]:
                    self._etag = held.etag
                    return True
                return False
            if code in ("NotImplemented", "501"):
                raise _NoConditionalWrites(first_line(exc)) from None
            raise self._failed("write", exc) from None
        except Exception as exc:
            raise self._failed("write", exc) from None
        self._etag = put["ETag"]
        return True

    def _failed(self, what: str, exc: BaseException) -> StorageFailed:
        return StorageFailed(f"storage: cannot {what} the sweep's lease {self.where} "
                             f"({first_line(exc)})")


class _NoConditionalWrites(Exception):
    """The store answered a conditional write with 501 Not Implemented."""


@contextlib.contextmanager
def object_lease(folder: Location, command: str) -> Iterator[ObjectLease | None]:
    """Hold the lease for the body of the `with`; yields it (its `lost` says whether
    another driver took it over), or None on a store without conditional writes."""
    lease = ObjectLease(folder)
    if not lease.take(command):
        yield None
        return
    try:
        yield lease
    finally:
        lease.release()


def _client(fs: pafs.S3FileSystem, failed: Callable[[str, BaseException], Exception]):
    """A boto3 S3 client for the store `fs` talks to: its endpoint, scheme, region,
    credentials, anonymity and CA file (pyarrow's own constructor arguments)."""
    import boto3
    import botocore
    from botocore.config import Config

    options = fs.__reduce__()[1][0]
    endpoint = options.get("endpoint_override") or None
    if endpoint and "://" not in endpoint:
        endpoint = f"{options.get('scheme') or 'https'}://{endpoint}"
    # checksums only where required: S3-compatible stores that predate S3's default
    # CRC checksums (boto3 >= 1.36) refuse them
    config = Config(retries={"max_attempts": 3}, connect_timeout=10, read_timeout=20,
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    signature_version=botocore.UNSIGNED if options.get("anonymous") else None)
    keys = {"aws_access_key_id": options.get("access_key"),
            "aws_secret_access_key": options.get("secret_key"),
            "aws_session_token": options.get("session_token")}
    try:
        return boto3.client("s3", endpoint_url=endpoint,
                            region_name=options.get("region") or None, config=config,
                            verify=options.get("tls_ca_file_path") or None,
                            **{k: v for k, v in keys.items() if v})
    except Exception as exc:  # a profile that is not there, a bad region...
        raise failed("reach", exc) from None


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
