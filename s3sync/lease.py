"""A lock across machines: a lease object in the bucket, written with conditional PUTs.

Taking the lease is a PUT with ``If-None-Match: *``; a lease whose expiry has passed is
taken over with a PUT conditioned on its ETag, so two hosts can never both win. While
the run lasts a thread renews it (again conditioned on the ETag it holds), and at the
end it is deleted if it is still ours. Expiry is judged by this machine's clock.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from s3sync.errors import ConfigError, LockHeld, RemoteError

if TYPE_CHECKING:
    from s3sync.store.remote import ObjectStore

TTL = 120.0


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "host": str,
    "pid": int,
    "renewed": (int, float),
    "expires": (int, float),
}


def read_lease(body: bytes) -> tuple[float, str] | None:
    """Return when the lease *body* expires and who holds it, or None when the bytes are
    not a lease s3sync wrote: a JSON object of exactly its fields, of their types (with
    the ``"s3sync": "lease"`` mark, or without it as older versions wrote it). Anything
    else at the key is someone's object, never to be taken over."""
    import json  # here: only a run with --lock-s3 needs it

    try:
        record = json.loads(body)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.pop("s3sync", "lease") != "lease":
        return None
    if record.keys() != _FIELDS.keys():
        return None
    for name, kind in _FIELDS.items():
        value = record[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            return None
    return float(record["expires"]), f"host {record['host']} pid {record['pid']}"


class Lease:
    """The lease at *key* in *store*; ``acquire`` raises LockHeld when another run has it."""

    def __init__(
        self,
        store: ObjectStore,
        key: str,
        *,
        where: str,
        ttl: float = TTL,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.key = key
        self._where = where
        self._ttl = ttl
        self._now = now
        self._etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = threading.Event()

    def _body(self) -> bytes:
        now = self._now()
        record = {
            "s3sync": "lease",
            "host": os.uname().nodename,
            "pid": os.getpid(),
            "renewed": now,
            "expires": now + self._ttl,
        }
        import json

        return json.dumps(record).encode()

    def acquire(self) -> None:
        """Take the lease, or take over an expired one; raise LockHeld otherwise."""
        for _ in range(3):
            self._etag = self._store.put_bytes(self.key, self._body(), if_none_match=True)
            if self._etag is not None:
                return
            current = self._store.get_bytes(self.key)
            if current is None:
                continue  # released between our two requests: try again
            body, etag = current
            holder = read_lease(body)
            if holder is None:
                raise ConfigError(
                    f"{self._where} holds an object that is not an s3sync lease; nothing "
                    "was changed: give --lock-s3 a key of its own"
                )
            expires, who = holder
            if expires > self._now():
                until = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(expires))
                raise LockHeld(f"{self._where} is locked by {who} until {until}")
            self._etag = self._store.put_bytes(self.key, self._body(), if_match=etag)
            if self._etag is not None:
                return
        raise LockHeld(f"{self._where} is being taken by another run")

    def renew(self) -> bool:
        """Extend the lease; return False when it is no longer ours."""
        if self._etag is None:
            return False
        etag = self._store.put_bytes(self.key, self._body(), if_match=self._etag)
        if etag is None:
            return False
        self._etag = etag
        return True

    def keep_renewed(self, on_lost: Callable[[], None]) -> None:
        """Renew every third of the TTL on a thread; call *on_lost* if the lease is lost."""

        def loop() -> None:
            deadline = self._now() + self._ttl
            while not self._stop.wait(self._ttl / 3):
                try:
                    if self.renew():
                        deadline = self._now() + self._ttl
                        continue
                except RemoteError:
                    if self._now() < deadline:
                        continue  # a passing fault: the lease still holds, try again
                self.lost.set()
                on_lost()
                return

        self._thread = threading.Thread(target=loop, name="s3sync-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and delete the lease if it is still ours; best effort."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._etag is not None and not self.lost.is_set():
            with contextlib.suppress(RemoteError):  # if not, it expires on its own
                self._store.delete_if_match(self.key, self._etag)
        self._etag = None
