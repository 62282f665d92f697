"""The change rule and the streaming matcher that turns two scans into actions."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from s3sync.model import Delete, Reason, Stat, Upload
from s3sync.paths import ancestors

NS = 1_000_000_000


def upload_reason(local: Stat, remote: Stat | None, *, fudge: float) -> Reason | None:
    """Return why *local* must be uploaded over *remote*, or None when it is up to date.

    The object's time is LastModified, the time it was uploaded, not the file's mtime;
    clocks drift, so the file counts as changed while its mtime is later than
    LastModified minus *fudge* seconds. A file edited shortly before an upload therefore
    goes up again on the next runs, until one runs more than *fudge* after the edit.
    """
    if remote is None:
        return Reason.NEW
    if local.size != remote.size:
        return Reason.SIZE
    if local.mtime_ns > remote.mtime_ns - int(fudge * NS):
        return Reason.MTIME
    return None


class Matcher:
    """Pairs local and remote entries as they arrive, so matched pairs never pile up.

    Feed it from one thread: ``local`` and ``remote`` return an upload as soon as a path
    has been seen on both sides and differs; ``finish`` turns what stayed unmatched into
    uploads (local only) and deletes (remote only, unless protected).
    """

    def __init__(self, key: Callable[[str], str], *, fudge: float) -> None:
        self._key = key
        self._fudge = fudge
        self._local: dict[str, Stat] = {}
        self._remote: dict[str, Stat] = {}
        self._protected: set[str] = set()
        self.unchanged = 0

    def _compare(self, relpath: str, local: Stat, remote: Stat | None) -> Upload | None:
        reason = upload_reason(local, remote, fudge=self._fudge)
        if reason is None:
            self.unchanged += 1
            return None
        return Upload(self._key(relpath), relpath, local, reason)

    def local(self, relpath: str, stat: Stat) -> Upload | None:
        """Take a local file; return its upload when the remote side has already been seen."""
        remote = self._remote.pop(relpath, None)
        if remote is None:
            self._local[relpath] = stat
            return None
        return self._compare(relpath, stat, remote)

    def remote(self, relpath: str, stat: Stat) -> Upload | None:
        """Take a listed object; return the upload of its file when that was already seen."""
        local = self._local.pop(relpath, None)
        if local is None:
            self._remote[relpath] = stat
            return None
        return self._compare(relpath, local, stat)

    def protect(self, relpath: str) -> None:
        """Never delete *relpath* or anything below it: it exists locally but was not read."""
        self._protected.add(relpath)

    def _is_protected(self, relpath: str) -> bool:
        if relpath in self._protected:
            return True
        return any(d in self._protected for d in ancestors(relpath))

    def pending(self) -> int:
        """Return how many entries are waiting for their other side."""
        return len(self._local) + len(self._remote)

    def finish_uploads(self) -> Iterator[Upload]:
        """Yield uploads for files the remote side never had, once both scans have ended."""
        while self._local:
            relpath, stat = self._local.popitem()
            upload = self._compare(relpath, stat, None)
            if upload is not None:
                yield upload

    def finish_deletes(self) -> list[Delete]:
        """Return deletes for objects with no local file, sorted by key."""
        return sorted(
            (
                Delete(self._key(relpath))
                for relpath in self._remote
                if not self._is_protected(relpath)
            ),
            key=lambda d: d.key,
        )
