"""The shared run lock in S3 as a lease: expiry, heartbeat, fencing token, and conditional writes throughout.

The lock is one JSON object, ``{"holder", "token", "ttl_s", "state"}``, never deleted: releasing it writes
``state: released``, so its fencing token only ever grows, whoever holds it next.

- **Taking it** is a conditional write: ``If-None-Match: *`` for the very first holder, ``If-Match: <etag>``
  of the copy read for every later one (after a release, or over an expired lease). S3 admits exactly one
  writer per version, so two takers never both win.
- **Expiry is judged by S3's clock**: a lease has expired when the ``Date`` of our read is past the object's
  ``Last-Modified`` plus its ``ttl_s``. Holders on machines whose clocks disagree still agree on expiry.
- **The heartbeat** rewrites the lease (``If-Match``, same token) every third of its TTL. A rewrite refused
  with 412 means someone took it over or unlocked it: the lease is lost. So is one not renewed for a whole
  TTL (the holder cannot prove nobody took it over meanwhile).
- **Fencing**: ``check()`` raises ``LockLost`` once the lease is lost; the run journal calls it before every
  write, so a holder that lost its lease stops recording (and so stops acting) instead of racing the new one.
- **Releasing** is ``If-Match`` on the etag we last wrote: a holder whose lease was taken over cannot release
  the new holder's lock. S3's conditional DELETE is not used, since LocalStack does not implement it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from orchestrator.engine.lock import LockHolder
from orchestrator.errors import DrError, LockHeld, LockLost, Permanent
from orchestrator.permissions import Grant, Scope

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_TTL_S = 60.0

IAM_GRANTS = (
    # The lock lives next to the backups (``--lock-url s3://<backup bucket>/...``); ``drctl unlock`` lists it.
    Grant(Scope.BACKUP_OBJECT, ("s3:GetObject", "s3:PutObject"), ("s3:GetObject", "s3:PutObject")),
    Grant(Scope.BACKUP_BUCKET, ("s3:ListBucket",), ("s3:ListObjectsV2",)),
)
"""What the S3 run lock calls (see ``orchestrator.permissions``)."""
_CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict", "412")
_MISSING = ("NoSuchKey", "404")


@dataclass(frozen=True)
class LeaseCopy:
    """The lock object as one read saw it."""

    holder: LockHolder | None
    token: int
    ttl_s: float | None
    held: bool
    etag: str
    expires: datetime | None
    """When the lease runs out by S3's clock; None for a lock written by an older drctl, which never expires."""
    server_now: datetime

    @property
    def expired(self) -> bool:
        return self.expires is not None and self.server_now >= self.expires


def _code(exc: Exception) -> str:
    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _translated(exc: Exception, what: str, client: S3Client) -> DrError:
    """Any other SDK failure in the project's terms: unreachable, credentials, permissions, a missing bucket."""
    from orchestrator.providers.s3 import translate_s3_error

    return translate_s3_error(exc, what, str(client.meta.endpoint_url))


class S3Lease:
    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        ttl_s: float = DEFAULT_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("a lease needs a positive TTL")
        self._client = client
        self._bucket = bucket
        self._key = key
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._mutex = threading.Lock()
        self._etag: str | None = None
        self._token = 0
        self._holder: LockHolder | None = None
        self._renewed_at = 0.0
        self._lost: str | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.took_over: LockHolder | None = None
        """The holder whose expired lease ``acquire`` took over, for the caller to report."""

    @property
    def name(self) -> str:
        return f"s3://{self._bucket}/{self._key}"

    @property
    def token(self) -> int:
        """The fencing token of our lease (0 before it is taken)."""
        return self._token

    # -- reading and writing the object ----------------------------------------------------------------

    def read(self) -> LeaseCopy | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            resp = self._client.get_object(Bucket=self._bucket, Key=self._key)
            body = resp["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            if _code(exc) in _MISSING:
                return None
            raise _translated(exc, f"the lock {self.name}", self._client) from exc
        date = resp["ResponseMetadata"]["HTTPHeaders"].get("date")
        server_now = parsedate_to_datetime(date) if date else resp["LastModified"]
        try:
            doc = json.loads(body)
            if "token" not in doc:  # written by a drctl before leases: a bare holder, held until unlocked
                return LeaseCopy(LockHolder(**doc), 0, None, True, str(resp["ETag"]), None, server_now)
            holder = LockHolder(**doc["holder"]) if doc.get("holder") else None
            ttl = float(doc["ttl_s"])
            expires = resp["LastModified"] + timedelta(seconds=ttl)
            held = doc.get("state") == "held"
            return LeaseCopy(holder, int(doc["token"]), ttl, held, str(resp["ETag"]), expires, server_now)
        except (ValueError, TypeError, KeyError) as exc:
            raise Permanent(
                f"the lock {self.name} is not a drctl lock ({exc}); remove it with `drctl unlock --lock-url` "
                "or by hand once no run uses it"
            ) from exc

    def _put(self, doc: dict[str, Any], *, if_match: str | None) -> str | None:
        """Write the lock conditionally; its new etag, or None when the condition failed (someone else won)."""
        from botocore.exceptions import BotoCoreError, ClientError

        body = json.dumps(doc, sort_keys=True).encode()
        try:
            if if_match is None:
                resp = self._client.put_object(Bucket=self._bucket, Key=self._key, Body=body, IfNoneMatch="*")
            else:
                resp = self._client.put_object(Bucket=self._bucket, Key=self._key, Body=body, IfMatch=if_match)
        except (ClientError, BotoCoreError) as exc:
            if _code(exc) in _CONFLICT:
                return None
            raise _translated(exc, f"the lock {self.name}", self._client) from exc
        return str(resp["ETag"])

    def _doc(self, holder: LockHolder | None, token: int, state: str) -> dict[str, Any]:
        return {"holder": asdict(holder) if holder else None, "token": token, "ttl_s": self._ttl_s, "state": state}

    # -- the RunLock protocol ---------------------------------------------------------------------------

    def acquire(self, holder: LockHolder) -> None:
        # The lease is counted from before the write: S3 stamps Last-Modified on arrival, so a clock started
        # after the answer would run behind the one a taker judges expiry by.
        sent = self._monotonic()
        etag = self._put(self._doc(holder, 1, "held"), if_match=None)
        token = 1
        if etag is None:
            current = self.read()
            if current is None:
                raise LockHeld(f"{self.name} changed hands while being taken; run again")
            if current.held and not current.expired:
                raise LockHeld(self._held_message(current))
            token = current.token + 1
            sent = self._monotonic()
            etag = self._put(self._doc(holder, token, "held"), if_match=current.etag)
            if etag is None:
                raise LockHeld(f"{self.name} changed hands while being taken; run again")
            self.took_over = current.holder if current.held else None
        with self._mutex:
            self._etag, self._token, self._holder = etag, token, holder
            self._renewed_at = sent
            self._lost = None
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="lock-heartbeat", daemon=True)
        self._beat.start()

    def _held_message(self, current: LeaseCopy) -> str:
        who = current.holder.describe() if current.holder else "an unknown holder"
        if current.expires is None:
            until = "with no expiry (written by a drctl before leases)"
        else:
            until = f"its lease runs to {current.expires.isoformat()} unless renewed"
        run = current.holder.run_id if current.holder else "RUN_ID"
        return (
            f"{self.name} is locked by {who}, {until}; wait for it, or run "
            f"`drctl unlock {run} --lock-url s3://{self._bucket}/...` only if that run is really gone"
        )

    def release(self, holder: LockHolder) -> None:
        """Mark the lease released, only if it is still ours (the etag we last wrote)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        with self._mutex:
            etag, token, ours = self._etag, self._token, self._holder
            self._etag = None
        if etag is None or ours is None or ours.run_id != holder.run_id or self._lost:
            return
        self._put(self._doc(None, token, "released"), if_match=etag)

    def force_unlock(self) -> LockHolder | None:
        """Release whoever holds it; the token moves on, so the old holder's heartbeat finds its lease lost."""
        return self.unlock(None)

    def unlock(self, run_id: str | None) -> LockHolder | None:
        """Release the lock if ``run_id`` holds it (any holder for None), conditionally on the copy read: a
        lock that changed hands since is left alone. Returns the holder released, if any."""
        current = self.read()
        if current is None or not current.held:
            return None
        if run_id is not None and (current.holder is None or current.holder.run_id != run_id):
            return None
        if self._put(self._doc(None, current.token + 1, "released"), if_match=current.etag) is None:
            return None
        return current.holder

    def check(self) -> None:
        """Raise ``LockLost`` if the lease is no longer certainly ours (the fence every journal write calls)."""
        with self._mutex:
            lost = self._lost
            if lost is None and self._etag is not None and self._monotonic() - self._renewed_at >= self._ttl_s:
                lost = f"not renewed for {self._ttl_s:g}s (S3 unreachable?), so another run may hold it"
                self._lost = lost
        if lost is not None:
            raise LockLost(f"lost the run lock {self.name} (fencing token {self._token}): {lost}; this run stopped")

    # -- the heartbeat ----------------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        while not self._stop.wait(self._ttl_s / 3):
            with self._mutex:
                etag, token, holder = self._etag, self._token, self._holder
            if etag is None:
                return
            sent = self._monotonic()
            try:
                new = self._put(self._doc(holder, token, "held"), if_match=etag)
            except DrError:
                continue  # unreachable for now: check() declares the lease lost once a whole TTL has passed
            with self._mutex:
                if new is None:
                    self._lost = "someone took it over or unlocked it"
                    return
                self._etag, self._renewed_at = new, sent
