"""The change rule and the streaming matcher that turns two scans into actions."""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable, Iterator
from typing import Generic, NamedTuple, TypeVar

from s3sync.model import Reason, Report, Stat, Upload
from s3sync.paths import ancestors

NS = 1_000_000_000
LEAD = 10_000  # entries a scan may run ahead of the other before it pauses
A = TypeVar("A")


def upload_reason(local: Stat, remote: Stat | None, *, fudge: float) -> Reason | None:
    """Return why *local* must be uploaded over *remote*, or None when it is up to date.

    The object's time is LastModified, the time it was uploaded, not the file's mtime;
    clocks drift, so a file whose mtime is earlier than LastModified minus *fudge*
    seconds is unchanged, and a later one is *ambiguous*, not changed: it may have been
    written again with the same bytes (every site build does), or just before the
    upload. Such a file of the object's size is UNVERIFIED: a worker compares its
    content with the object's ETag (``hashing.settle``) and uploads only if they differ.
    """
    if remote is None:
        return Reason.NEW
    if local.size != remote.size:
        return Reason.SIZE
    if local.mtime_ns > remote.mtime_ns - int(fudge * NS):
        return Reason.UNVERIFIED
    return None


def exact_reason(local: Stat, remote: Stat | None) -> Reason | None:
    """Return why *local* must be uploaded over what the index recorded, or None.

    The index holds the size and mtime of the file each object was uploaded from, so the
    comparison is exact: the same size and mtime mean the same file. Another mtime at
    the same size is UNVERIFIED: the file may have been written again with the same
    bytes, which a worker compares with the ETag the index recorded.
    """
    if remote is None:
        return Reason.NEW
    if local.size != remote.size:
        return Reason.SIZE
    if local.mtime_ns != remote.mtime_ns:
        return Reason.UNVERIFIED
    return None


Rule = Callable[[Stat, Stat | None], Reason | None]


def fudge_rule(fudge: float) -> Rule:
    """Return the listing rule with *fudge* seconds bound."""

    def rule(local: Stat, remote: Stat | None) -> Reason | None:
        return upload_reason(local, remote, fudge=fudge)

    return rule


class Matcher(Generic[A]):
    """Pairs local and remote entries as they arrive, so matched pairs never pile up.

    Feed it from one thread. ``local`` and ``remote`` call ``pair(relpath, local,
    remote)`` as soon as a path has been seen on both sides and return the action it
    decides (None: the two are the same). Once both scans have ended, the leftovers
    on each side are the paths the other side never had.

    A side whose entries are actions on their own has a *new_local* or *new_remote*
    (push uploads a file no object matched, restore downloads an object no file
    matched): once the other side has ended (``end_remote``, ``end_local``), such an
    entry is that action at once instead of waiting for the end of both scans.

    Both scans come in key order (the walk by design, a listing by S3's rule), so what
    waits is mostly the *lead* of the faster side: its entries past the furthest path
    the other side has reached. ``ahead`` tells a scan to
    pause while its lead exceeds *lead*, which keeps memory flat however big the tree.
    The order is never trusted for a decision: a scan out of order (some servers list
    ``a/b`` before ``a-b``) only makes a lead look longer or shorter than it is.
    """

    def __init__(
        self,
        pair: Callable[[str, Stat, Stat], A | None],
        *,
        new_local: Callable[[str, Stat], A] | None = None,
        new_remote: Callable[[str, Stat], A] | None = None,
        lead: int | None = LEAD,
    ) -> None:
        self._pair = pair
        self._local: dict[str, Stat] = {}
        self._remote: dict[str, Stat] = {}
        self._protected: set[str] = set()
        self._new_local = new_local
        self._new_remote = new_remote
        self._local_ended = False
        self._remote_ended = False
        self.unchanged = 0
        # the furthest path each side has reached, and its waiting entries past the
        # other's, oldest first (a path leaves once the other side reaches it)
        self._local_top = self._remote_top = ""
        self._local_lead: collections.deque[str] = collections.deque()
        self._remote_lead: collections.deque[str] = collections.deque()
        self._limit = lead or 0
        # without a *lead* nothing is tracked (the sides are read one after the other)
        self._track_local = self._track_remote = lead is not None

    def local(self, relpath: str, stat: Stat) -> A | None:
        """Take a local file; return its action when the remote side has already been seen
        (or has ended, with *new_local*)."""
        if self._track_local and relpath > self._local_top:
            self._local_top = relpath
            lead = self._remote_lead
            while lead and lead[0] <= relpath:
                lead.popleft()
        remote = self._remote.pop(relpath, None)
        if remote is not None:
            action = self._pair(relpath, stat, remote)
            if action is None:
                self.unchanged += 1
            return action
        if self._remote_ended and self._new_local is not None:
            return self._new_local(relpath, stat)
        self._local[relpath] = stat
        if self._track_local and relpath > self._remote_top:
            self._local_lead.append(relpath)
        return None

    def remote(self, relpath: str, stat: Stat) -> A | None:
        """Take a listed object; return its action when the local side was already seen
        (or has ended, with *new_remote*)."""
        if self._track_remote and relpath > self._remote_top:
            self._remote_top = relpath
            lead = self._local_lead
            while lead and lead[0] <= relpath:
                lead.popleft()
        local = self._local.pop(relpath, None)
        if local is not None:
            action = self._pair(relpath, local, stat)
            if action is None:
                self.unchanged += 1
            return action
        if self._local_ended and self._new_remote is not None:
            return self._new_remote(relpath, stat)
        self._remote[relpath] = stat
        if self._track_remote and relpath > self._local_top:
            self._remote_lead.append(relpath)
        return None

    def ahead(self, *, local: bool) -> bool:
        """Whether the walk (*local*) or the listing should pause: its lead is over the
        limit. Never both: a lead only holds paths past the furthest the other side has
        reached, so one of the two is always empty. Safe to ask from any thread."""
        return len(self._local_lead if local else self._remote_lead) > self._limit

    def end_remote(self) -> Iterator[A]:
        """Mark the remote side ended; return *new_local*'s action for each local entry
        waiting for it, in path order (they will never have a counterpart)."""
        self._remote_ended = True
        self._track_local = False
        self._local_lead.clear()
        return self._alone(self._local, self._new_local)

    def end_local(self) -> Iterator[A]:
        """Mark the local side ended; return *new_remote*'s action for each remote entry
        waiting for it, in path order."""
        self._local_ended = True
        self._track_remote = False
        self._remote_lead.clear()
        return self._alone(self._remote, self._new_remote)

    @staticmethod
    def _alone(waiting: dict[str, Stat], new: Callable[[str, Stat], A] | None) -> Iterator[A]:
        if new is None:
            raise ValueError("this side's entries are no actions on their own")
        for relpath in sorted(waiting):
            yield new(relpath, waiting.pop(relpath))

    def protect(self, relpath: str) -> None:
        """Never offer *relpath* or anything below it as a remote leftover to delete."""
        self._protected.add(relpath)

    def is_protected(self, relpath: str) -> bool:
        """Return True when *relpath* or a directory above it is protected."""
        if relpath in self._protected:
            return True
        return any(d in self._protected for d in ancestors(relpath))

    def claim_remote(self, relpath: str) -> Stat | None:
        """Take *relpath* off the remote side (it has a counterpart after all); return it."""
        return self._remote.pop(relpath, None)

    def pending(self) -> int:
        """Return how many entries are waiting for their other side."""
        return len(self._local) + len(self._remote)

    def local_leftovers(self) -> Iterator[tuple[str, Stat]]:
        """Remove and yield the local entries the remote side never had."""
        while self._local:
            yield self._local.popitem()

    def remote_leftovers(self) -> list[tuple[str, Stat]]:
        """Return the remote entries the local side never had, sorted by path."""
        return sorted(self._remote.items())


def push_pair(
    key: Callable[[str], str],
    rule: Rule,
    on_unchanged: Callable[[str, Stat], None] | None = None,
    recheck: Callable[[str, Stat], Reason | None] | None = None,
    *,
    compressed: tuple[Callable[[str], bool], Rule] | None = None,
    unknown_headers: Reason | None = None,
) -> Callable[[str, Stat, Stat], Upload | None]:
    """Return the pairing function of push: upload when *rule* gives a reason, else when
    *recheck* gives one for the object (its headers may not be the ones it should have).

    *recheck* is only asked about objects whose headers' digest is known; the reason of
    the others is *unknown_headers* (most objects of a no-op run with an index: not
    calling it for each is a fortieth of that run). *compressed* is ``(applies, rule)``:
    the paths *applies* to use that rule instead, because their objects are compressed
    and the listed size is not the file's.
    """

    def pair(relpath: str, local: Stat, remote: Stat) -> Upload | None:
        use = compressed[1] if compressed is not None and compressed[0](relpath) else rule
        reason = use(local, remote)
        if reason is None and recheck is not None:
            reason = unknown_headers if remote.headers is None else recheck(relpath, remote)
        if reason is None:
            if on_unchanged is not None:
                on_unchanged(relpath, local)
            return None
        return Upload(key(relpath), relpath, local, reason, remote)

    return pair


def restore_reason(remote: Stat, local: Stat | None, *, compare: Compare) -> Reason | None:
    """Return why the object must be downloaded over *local*, or None when it is there.

    A local file restored by s3sync carries the ETag it was restored from (as
    ``local.etag``, only while its mtime and size are the ones s3sync wrote): the same
    ETag means the same object, whatever the sizes (a compressed object was
    decompressed). Same size and no record is UNVERIFIED: the object's mtime metadata
    must decide. In checksum mode every pair that may hold the same bytes is UNVERIFIED.
    """
    if local is None:
        return Reason.NEW
    marked = local.etag is not None and same_etag(local.etag, remote.etag)
    if compare is Compare.CHECKSUM:
        return Reason.UNVERIFIED if marked or local.size == remote.size else Reason.SIZE
    if marked:
        return None
    if local.size != remote.size:
        return Reason.SIZE
    if compare is Compare.SIZE:
        return None
    if local.etag is None:
        return Reason.UNVERIFIED
    return Reason.CONTENT if remote.etag is not None else None


class DeleteLimit(NamedTuple):
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
    source: str = "source directory",
) -> str | None:
    """Return the guard that withholds all *deletes*, or None when they may run.

    A missing or empty source (an unmounted disk looks like one), a source on another
    device than the index recorded, or more deletes than the limit allows withhold them.
    """
    if not deletes:
        return None
    if not allow_empty_source:
        if source_missing:
            return f"{source} is missing (use --allow-empty-source to delete anyway)"
        if local_files == 0:
            what = "an empty mount point" if mount_point else "empty"
            return f"{source} is {what} (use --allow-empty-source to delete anyway)"
    if device_changed:
        return "source is on another device than the index recorded (is a disk unmounted?)"
    if limit is not None and not limit.allows(deletes, remote_objects):
        return f"{deletes} deletes exceed --max-delete {limit}"
    return None


def withheld_by_errors(report: Report, *, halted: bool) -> str | None:
    """Return why this run's errors forbid any delete, or None."""
    if report.interrupted:
        return "interrupted"
    if report.fatal is not None:
        return "fatal error"
    if report.failed:
        return "errors"
    if halted:
        return "halted"
    return None


class Compare(enum.Enum):
    """``--compare``: what makes a file and an object differ."""

    MTIME = "mtime"
    CHECKSUM = "checksum"
    SIZE = "size"


def push_rule(
    *,
    compare: Compare,
    exact: bool,
    fudge: float,
    force: bool = False,
    ignore_existing: bool = False,
    verdict: Callable[[Stat, Stat], bool | None] | None = None,
    compressed: bool = False,
) -> Rule:
    """Return push's rule for a file and the object at its key.

    *exact* (a trusted index) compares mtimes exactly, else with the fudge. In checksum
    mode *verdict* may know from cached hashes whether the contents match; when it cannot
    tell the reason is UNVERIFIED: a worker reads the file and decides.

    For a *compressed* object the listed size is not the file's: the pair is UNVERIFIED
    and a worker compares the file's size, mtime or MD5 with what the object's metadata
    recorded of the file it was made from.

    Without *exact*, a file of the object's size written after its LastModified minus
    the fudge is ambiguous (see ``upload_reason``): *verdict* settles it from cached
    hashes when it can, else it stays UNVERIFIED for a worker to compare contents.
    """
    if compare is Compare.MTIME and not (ignore_existing or force or compressed):
        common = exact_reason if exact else fudge_rule(fudge)  # one call a pair
        return common if verdict is None else _settled_by(common, verdict)

    def rule(local: Stat, remote: Stat | None) -> Reason | None:
        if remote is None:
            return Reason.NEW
        if ignore_existing:
            return None
        if force:
            return Reason.FORCED
        if compressed:
            return Reason.UNVERIFIED
        if local.size != remote.size:
            return Reason.SIZE
        if compare is Compare.SIZE:
            return None
        if compare is Compare.CHECKSUM:
            return _known(local, remote, verdict)
        reason = exact_reason(local, remote) if exact else upload_reason(local, remote, fudge=fudge)
        return _known(local, remote, verdict) if reason is Reason.UNVERIFIED else reason

    return rule


def _known(
    local: Stat, remote: Stat, verdict: Callable[[Stat, Stat], bool | None] | None
) -> Reason | None:
    """Return what cached hashes (*verdict*) say of a pair of equal sizes: None (same
    bytes), CONTENT, or UNVERIFIED when they cannot tell."""
    known = verdict(local, remote) if verdict is not None else None
    if known is None:
        return Reason.UNVERIFIED
    return None if known else Reason.CONTENT


def _settled_by(rule: Rule, verdict: Callable[[Stat, Stat], bool | None]) -> Rule:
    """Return *rule* with the pairs it leaves UNVERIFIED settled by *verdict* if it can."""

    def settled(local: Stat, remote: Stat | None) -> Reason | None:
        reason = rule(local, remote)
        if reason is Reason.UNVERIFIED and remote is not None:
            return _known(local, remote, verdict)
        return reason

    return settled


def same_etag(a: str | None, b: str | None) -> bool:
    """Return True when two ETags are the same (some servers drop the quotes)."""
    return a is not None and b is not None and a.strip('"') == b.strip('"')


def copy_reason(
    source: Stat,
    dest: Stat,
    *,
    compare: Compare,
    fudge: float,
    force: bool = False,
    ignore_existing: bool = False,
) -> Reason | None:
    """Return why the object *source* must be copied over *dest*, or None.

    Checksum mode (copy's default) compares ETags; mtime mode does too for a source
    written after the destination's LastModified minus *fudge*, and takes an older one
    as copied already. When either ETag is a multipart one
    the two may differ for equal bytes (parts of other sizes): the pair is UNVERIFIED and
    the copy's ``s3sync-source-etag`` metadata decides.
    """
    if ignore_existing:
        return None
    if force:
        return Reason.FORCED
    if source.size != dest.size:
        return Reason.SIZE
    if compare is Compare.SIZE:
        return None
    if compare is Compare.MTIME and source.mtime_ns <= dest.mtime_ns - int(fudge * NS):
        return None
    # in checksum mode, or a source written after the copy minus the fudge: ambiguous,
    # settled by the ETags both listings carry (the same bytes need no copy)
    if same_etag(source.etag, dest.etag):
        return None
    either_multipart = "-" in (source.etag or "") or "-" in (dest.etag or "")
    return Reason.UNVERIFIED if either_multipart else Reason.CONTENT
