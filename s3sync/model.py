"""Frozen value types shared by every layer: stats, reasons, actions, outcomes, the report.

The values are named tuples, not frozen dataclasses: every run pays for making its
classes at import, and a dataclass takes six times as long to make. Being tuples, two
values of different types with the same fields compare equal: compare types first.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from s3sync.errors import ExitCode

# requests a sync keeps in flight at once unless told otherwise (README, "Requests in
# flight", says how it was chosen)
MAX_REQUESTS = 128


class Stat(NamedTuple):
    """What both sides know about one entry: size in bytes, time in ns since the epoch (UTC).

    For a local file the time is its mtime; for a listed object it is LastModified,
    which is the upload time, not the file's mtime. A named tuple, not a frozen
    dataclass: a no-op run makes one per file on each side, at a fifth of the cost.
    """

    size: int
    mtime_ns: int
    etag: str | None = None
    inode: tuple[int, int] | None = None  # (device, inode) of a local file, when asked for
    headers: str | None = None  # digest of an object's headers, when the index knows it


class ObjectInfo(NamedTuple):
    """What a HEAD or GET tells of one object: size, LastModified (ns), ETag, user metadata."""

    size: int
    last_modified_ns: int
    etag: str
    metadata: Mapping[str, str]
    headers: Mapping[str, object] = types.MappingProxyType({})  # as the store names them
    encryption: str | None = None  # server-side: "AES256", "aws:kms", "SSE-C"...


class Reason(enum.Enum):
    """Why an action was planned; the value is what ``-v`` and ``--json`` print."""

    NEW = "new"
    SIZE = "size"
    MTIME = "mtime"
    CONTENT = "content"
    FORCED = "forced"
    UNVERIFIED = "unverified"
    GONE = "gone"
    HEADERS = "headers"  # the file is unchanged; the object's headers may not be
    ENCODING = "encoding"  # the file is unchanged; it must be sent (un)compressed now
    METADATA = "metadata"  # unchanged as the mtime the object recorded says (ETag no MD5)


class Settled(enum.Enum):
    """How a worker told whether a file holds an object's bytes (the value is the reason
    ``-v`` and ``--json`` print for it)."""

    CONTENT = "content"  # the file's MD5 (or part MD5s) against the ETag
    METADATA = "metadata"  # the ETag is no MD5: the mtime the object recorded of its file
    UNSETTLED = "unverified"  # nothing could tell: sent again

    def reason(self, *, same: bool) -> Reason:
        """Return the reason a pair settled this way is shown with, unchanged or not."""
        if self is Settled.CONTENT:
            return Reason.CONTENT
        if self is Settled.METADATA:
            return Reason.METADATA if same else Reason.MTIME
        return Reason.UNVERIFIED


class Upload(NamedTuple):
    """Put the local file at *path* (relative to the source root) as *key*.

    *previous* is what the destination held (listing or index), None for a new key.
    *content*, when set, is sent instead of a file: a generated page (*path* names no file).
    """

    key: str
    path: str
    stat: Stat
    reason: Reason
    previous: Stat | None = None
    content: bytes | None = None


class Delete(NamedTuple):
    """Remove *key*, which has no local counterpart."""

    key: str
    reason: Reason = Reason.GONE


class Download(NamedTuple):
    """Fetch *key* into the file at *path* (relative to the destination root).

    *stat* is the listed object (size, LastModified, ETag); *local* the file there now.
    Reason UNVERIFIED means the sizes match and nothing says whether the contents do:
    the object's ``mtime`` metadata decides, and the outcome carries the final reason.
    """

    key: str
    path: str
    stat: Stat
    reason: Reason
    local: Stat | None = None


class Copy(NamedTuple):
    """Copy the object *source_key* (of *stat*) to *key*; *previous* is what *key* holds."""

    key: str
    source_key: str
    stat: Stat
    reason: Reason
    previous: Stat | None = None


class RemoveLocal(NamedTuple):
    """Remove the local file at *path*, which has no object."""

    path: str
    reason: Reason = Reason.GONE

    @property
    def key(self) -> str:
        return self.path


Action = Upload | Delete | Download | Copy | RemoveLocal


class Severity(enum.Enum):
    """ERROR problems fail the run (exit 1, no deletes); WARNING problems are only reported."""

    ERROR = "error"
    WARNING = "warning"


class Problem(NamedTuple):
    """Something found while scanning that was not transferred, and why."""

    path: str
    message: str
    severity: Severity


class Outcome(NamedTuple):
    """The result of performing one action; *error* is a one-line message or None."""

    action: Action
    error: str | None = None
    retries: int = 0
    dry_run: bool = False
    fatal: bool = False
    etag: str | None = None
    unchanged: bool = False
    hashed: int = 0
    hashes: tuple[tuple[int, str], ...] = ()  # (part size, 0 for whole; ETag) of the file
    headers: str | None = None  # digest of the headers the object now has
    settled: Settled | None = None  # how a check of the file against the object went

    @property
    def ok(self) -> bool:
        """Return True when the action succeeded (or was only planned, in a dry run)."""
        return self.error is None


class Invalidation(NamedTuple):
    """The CloudFront invalidation a push made (or, in a dry run, would make)."""

    distribution: str
    paths: tuple[str, ...]
    ids: tuple[str, ...] = ()  # one per request: the paths go in batches
    error: str | None = None


@dataclass(slots=True)
class Report:
    """Counts of one run, filled by the one reporting thread; ``exit_code`` is the status."""

    command: str = "push"
    dry_run: bool = False
    keep_actions: bool = True
    uploaded: int = 0
    uploaded_bytes: int = 0
    downloaded: int = 0
    downloaded_bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    headers_fixed: int = 0
    deleted: int = 0
    unchanged: int = 0
    hashed_bytes: int = 0
    settled: dict[str, int] = field(default_factory=dict)  # Settled value -> pairs checked
    limited: int = 0
    failed: int = 0
    retries: int = 0
    throttled: int = 0  # answers asking for fewer requests (SlowDown, 503, 429)
    narrowest: int = 0  # the fewest requests in flight they left, when there were any
    withheld_deletes: int = 0
    withheld_reason: str | None = None
    interrupted: bool = False
    fatal: str | None = None
    remote: str = "listing"
    duration: float = 0.0
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    invalidations: list[Invalidation] = field(default_factory=list)

    def record(self, outcome: Outcome) -> None:
        """Count *outcome*."""
        self.retries += outcome.retries
        self.hashed_bytes += outcome.hashed
        if outcome.settled is not None:
            by = outcome.settled.value
            self.settled[by] = self.settled.get(by, 0) + 1
        if self.keep_actions:
            self.outcomes.append(outcome)
        action = outcome.action
        if not outcome.ok:
            self.failed += 1
            self.errors.append(Problem(action.key, outcome.error or "failed", Severity.ERROR))
        elif outcome.unchanged:
            self.unchanged += 1
        elif isinstance(action, Upload) and action.reason is Reason.HEADERS:
            self.headers_fixed += 1
        elif isinstance(action, Upload):
            self.uploaded += 1
            self.uploaded_bytes += action.stat.size
        elif isinstance(action, Download):
            self.downloaded += 1
            self.downloaded_bytes += action.stat.size
        elif isinstance(action, Copy):
            self.copied += 1
            self.copied_bytes += action.stat.size
        else:
            self.deleted += 1

    def note(self, problem: Problem) -> None:
        """Count a scan problem: errors fail the run, warnings do not."""
        if problem.severity is Severity.ERROR:
            self.failed += 1
            self.errors.append(problem)
        else:
            self.warnings.append(problem)

    @property
    def exit_code(self) -> ExitCode:
        """Return the exit status, applying the precedence documented in README.rst."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if self.fatal is not None:
            return ExitCode.FATAL
        if self.failed:
            return ExitCode.PARTIAL
        if self.withheld_deletes and self.withheld_reason is not None:
            return ExitCode.DELETES_WITHHELD
        return ExitCode.OK


def mtime_to_text(mtime_ns: int) -> str:
    """Return *mtime_ns* as decimal seconds since the epoch, exact (``1700000000.5``)."""
    sign = "-" if mtime_ns < 0 else ""
    seconds, fraction = divmod(abs(mtime_ns), 1_000_000_000)
    return f"{sign}{seconds}.{fraction:09d}".rstrip("0").rstrip(".")


def mtime_from_text(text: str) -> int | None:
    """Return ns since the epoch from decimal seconds (``mtime`` metadata), or None if bad."""
    text = text.strip()
    negative = text.startswith("-")
    whole, _, fraction = (text[1:] if text[:1] in "+-" else text).partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()):
        return None
    ns = int(whole) * 1_000_000_000 + int((fraction + "000000000")[:9] or 0)
    return -ns if negative else ns
