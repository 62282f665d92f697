"""The change rule and the streaming matcher that turns two scans into actions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

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


def exact_reason(local: Stat, remote: Stat | None) -> Reason | None:
    """Return why *local* must be uploaded over what the index recorded, or None.

    The index holds the size and mtime of the file each object was uploaded from, so the
    comparison is exact: any difference means the file changed.
    """
    if remote is None:
        return Reason.NEW
    if local.size != remote.size:
        return Reason.SIZE
    if local.mtime_ns != remote.mtime_ns:
        return Reason.MTIME
    return None


Rule = Callable[[Stat, Stat | None], Reason | None]


def fudge_rule(fudge: float) -> Rule:
    """Return the listing rule with *fudge* seconds bound."""

    def rule(local: Stat, remote: Stat | None) -> Reason | None:
        return upload_reason(local, remote, fudge=fudge)

    return rule


class Matcher:
    """Pairs local and remote entries as they arrive, so matched pairs never pile up.

    Feed it from one thread: ``local`` and ``remote`` return an upload as soon as a path
    has been seen on both sides and differs; ``finish`` turns what stayed unmatched into
    uploads (local only) and deletes (remote only, unless protected).
    """

    def __init__(
        self,
        key: Callable[[str], str],
        *,
        rule: Rule,
        on_unchanged: Callable[[str, Stat], None] | None = None,
    ) -> None:
        self._key = key
        self._rule = rule
        self._on_unchanged = on_unchanged
        self._local: dict[str, Stat] = {}
        self._remote: dict[str, Stat] = {}
        self._protected: set[str] = set()
        self.unchanged = 0

    def _compare(self, relpath: str, local: Stat, remote: Stat | None) -> Upload | None:
        reason = self._rule(local, remote)
        if reason is None:
            self.unchanged += 1
            if self._on_unchanged is not None:
                self._on_unchanged(relpath, local)
            return None
        return Upload(self._key(relpath), relpath, local, reason, remote)

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

    def leftovers(self) -> Iterator[tuple[str, Stat]]:
        """Yield the remote entries no local file matched (call after finish_uploads)."""
        yield from self._remote.items()

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


@dataclass(frozen=True, slots=True)
class DeleteLimit:
    """``--max-delete``: at most *value* deletes, or *value* percent of the objects."""

    value: int
    percent: bool = False

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)

    def allows(self, deletes: int, objects: int) -> bool:
        """Return True when *deletes* out of *objects* stays within the limit."""
        if self.percent:
            return deletes * 100 <= self.value * objects
        return deletes <= self.value


def delete_guard(
    *,
    deletes: int,
    local_files: int,
    remote_objects: int,
    source_missing: bool = False,
    mount_point: bool = False,
    device_changed: bool = False,
    allow_empty_source: bool = False,
    limit: DeleteLimit | None = None,
) -> str | None:
    """Return the guard that withholds all *deletes*, or None when they may run.

    A missing or empty source (an unmounted disk looks like one), a source on another
    device than the index recorded, or more deletes than the limit allows withhold them.
    """
    if not deletes:
        return None
    if not allow_empty_source:
        if source_missing:
            return "source directory is missing (use --allow-empty-source to delete anyway)"
        if local_files == 0:
            what = "an empty mount point" if mount_point else "empty"
            return f"source directory is {what} (use --allow-empty-source to delete anyway)"
    if device_changed:
        return "source is on another device than the index recorded (is a disk unmounted?)"
    if limit is not None and not limit.allows(deletes, remote_objects):
        return f"{deletes} deletes exceed --max-delete {limit}"
    return None
