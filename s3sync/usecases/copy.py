"""The copy use case: make one prefix mirror another, bucket to bucket, without downloading.

On one endpoint the bytes never leave S3 (CopyObject, or UploadPartCopy in parallel
parts); across endpoints or credentials they stream through in parts, bounded in memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from s3sync import engine
from s3sync.deleting import delete_objects
from s3sync.diff import (
    Compare,
    DeleteLimit,
    Matcher,
    copy_reason,
    delete_guard,
    same_etag,
    withheld_by_errors,
)
from s3sync.errors import Disposition, RemoteError, changed_underneath, classify
from s3sync.filters import Filter
from s3sync.model import Copy, Delete, Outcome, Reason, Report, Stat
from s3sync.paths import Location
from s3sync.store.remote import CopySource
from s3sync.tally import Tally

if TYPE_CHECKING:
    from s3sync.progress import Reporter
    from s3sync.store.remote import ObjectStore

Page = list[tuple[str, Stat]]
SOURCE_ETAG = "s3sync-source-etag"
MAX_COPY_OBJECT = 5 * 1024**3  # CopyObject's limit; larger objects always go in parts
_SOURCE = 0


@dataclass(frozen=True, slots=True)
class SourceTree:
    """Where to copy from: the listing prefix, and what each key keeps of its path.

    ``s3://b/photos`` copies ``photos/x`` as ``photos/x`` under the destination (as
    ``cp -r photos dest`` would); ``s3://b/photos/*`` copies it as ``x``.
    """

    location: Location
    keep: str

    @classmethod
    def parse(cls, location: Location, *, contents_only: bool) -> SourceTree:
        last = location.prefix.rstrip("/").rpartition("/")[2]
        keep = "" if contents_only or not last else last + "/"
        return cls(location, keep)

    def relpath(self, key: str) -> str | None:
        """Return the path under the destination prefix for the source *key*."""
        rest = self.location.relpath(key)
        return None if rest is None else self.keep + rest


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyOptions:
    """How a copy behaves; the CLI's flags with the same defaults."""

    workers: int = 16
    delete: bool = False
    dry_run: bool = False
    filters: tuple[tuple[bool, str], ...] = ()
    allow_empty_source: bool = False
    max_delete: DeleteLimit | None = None
    compare: Compare = Compare.CHECKSUM
    fudge: float = 1200.0
    force: bool = False
    ignore_existing: bool = False
    limit: int | None = None
    multipart_threshold: int = 8 * 1024 * 1024
    server_side: bool = True


def _perform_copy(
    action: Copy,
    *,
    source: ObjectStore,
    dest: ObjectStore,
    source_bucket: str,
    options: CopyOptions,
) -> Outcome:
    retried: list[BaseException] = []
    on_retry = retried.append
    try:
        if action.reason is Reason.UNVERIFIED:
            recorded = dest.head(action.key, on_retry=on_retry).metadata.get(SOURCE_ETAG)
            if same_etag(recorded, action.stat.etag):
                return Outcome(action, None, len(retried), unchanged=True)
            action = action._replace(reason=Reason.CONTENT)
        if options.dry_run:
            return Outcome(action, dry_run=True, retries=len(retried))
        multipart_source = "-" in (action.stat.etag or "")
        small = action.stat.size < options.multipart_threshold and (
            action.stat.size <= MAX_COPY_OBJECT
        )
        # every request is pinned to the version listed (or HEAD saw): a source
        # rewritten during the copy fails it, never mixes two versions
        origin = CopySource(source_bucket, action.source_key, action.stat.etag)
        if options.server_side and small and not multipart_source:
            etag = dest.copy_object(
                origin, action.key, info=None, extra_metadata={}, on_retry=on_retry
            )
        else:
            info = source.head(action.source_key, on_retry=on_retry)
            origin = origin._replace(etag=info.etag or None)
            extra = {SOURCE_ETAG: info.etag} if multipart_source or not small else {}
            if not options.server_side:
                etag = dest.put_from(
                    action.key,
                    info=info,
                    read=lambda first, last: source.get_range(
                        action.source_key, first, last, on_retry=on_retry, if_match=origin.etag
                    ),
                    extra_metadata=extra,
                    on_retry=on_retry,
                )
            elif small:
                etag = dest.copy_object(
                    origin, action.key, info=info, extra_metadata=extra, on_retry=on_retry
                )
            else:
                etag = dest.copy_parts(
                    origin, action.key, info=info, extra_metadata=extra, on_retry=on_retry
                )
        problem = _check(action, etag, dest, on_retry)
    except RemoteError as exc:
        if changed_underneath(exc):
            message = (
                "the source changed while it was copied: nothing kept (the next run copies it)"
            )
            return Outcome(action, message, len(retried))
        fatal = classify(exc) is Disposition.FATAL
        return Outcome(action, str(exc), len(retried), fatal=fatal)
    return Outcome(action, problem, len(retried), etag=etag)


def _check(
    action: Copy, etag: str, dest: ObjectStore, on_retry: Callable[[BaseException], None]
) -> str | None:
    """Return why the copy is not the source (size, or ETag where comparable), or None."""
    if same_etag(etag, action.stat.etag):
        return None
    single = "-" not in (action.stat.etag or "") and "-" not in etag
    if single:
        return f"copy check failed: ETag {etag} is not the source's {action.stat.etag}"
    size = dest.head(action.key, on_retry=on_retry).size
    if size != action.stat.size:
        return f"copy check failed: {size} bytes, the source has {action.stat.size}"
    return None


def run(
    src: SourceTree,
    dest: Location,
    source: ObjectStore,
    store: ObjectStore,
    reporter: Reporter,
    options: CopyOptions,
    *,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    keep_actions: bool = True,
) -> Report:
    """Copy what is missing or different from *src* to *dest*; with ``delete``, remove extras.

    Deletes of destination objects run last, only after a clean run no guard objects to
    (an empty source listing, ``max_delete``). Interruption as in push.
    """
    started = clock()
    report = Report(command="copy", dry_run=options.dry_run, keep_actions=keep_actions)
    tally = Tally(report, reporter, limit=options.limit, cancel=cancel)
    filters = Filter(options.filters)
    counts = {"source": 0, "dest": 0}

    def pair(relpath: str, from_source: Stat, in_dest: Stat) -> Copy | None:
        reason = copy_reason(
            from_source,
            in_dest,
            compare=options.compare,
            fudge=options.fudge,
            force=options.force,
            ignore_existing=options.ignore_existing,
        )
        if reason is None:
            return None
        return Copy(
            dest.key(relpath),
            src.location.key(relpath[len(src.keep) :]),
            from_source,
            reason,
            in_dest,
        )

    matcher: Matcher[Copy] = Matcher(pair)

    def listing(store_: ObjectStore, prefix: str) -> Iterable[Page | engine.Retried]:
        return engine.counting_retries(
            lambda on_retry: store_.list_pages(prefix, on_retry=on_retry)
        )

    def handle(side: int, item: object) -> Iterator[Copy]:
        if isinstance(item, engine.Retried):
            report.retries += item.requests
            return
        for key, stat in cast(Page, item):
            rel = src.relpath(key) if side == _SOURCE else dest.relpath(key)
            if rel is None or not filters.included(rel):
                continue
            if side == _SOURCE:
                counts["source"] += 1
                yield from tally.planned(matcher.local(rel, stat))
            else:
                counts["dest"] += 1
                yield from tally.planned(matcher.remote(rel, stat))

    def finish() -> Iterator[Copy]:
        for rel, stat in sorted(matcher.local_leftovers()):
            origin = src.location.key(rel[len(src.keep) :])
            yield from tally.planned(Copy(dest.key(rel), origin, stat, Reason.NEW))

    def transfer(action: Copy) -> Outcome:
        return _perform_copy(
            action, source=source, dest=store, source_bucket=src.location.bucket, options=options
        )

    perform = tally.gate(transfer, dry_run=options.dry_run)

    tally.stream(
        [
            lambda: listing(source, src.location.prefix),
            lambda: listing(store, dest.prefix),
        ],
        handle,
        finish,
        perform,
        workers=options.workers,
        in_flight=store.window,
        hold=lambda side: matcher.ahead(local=side == _SOURCE),
    )
    report.unchanged += matcher.unchanged
    tally.finish()

    if options.delete and not report.limited:
        deletes = [Delete(dest.key(rel)) for rel, _ in matcher.remote_leftovers()]
        withheld = withheld_by_errors(report, halted=tally.halt.is_set()) or delete_guard(
            deletes=len(deletes),
            local_files=counts["source"],
            remote_objects=counts["dest"],
            allow_empty_source=options.allow_empty_source,
            limit=options.max_delete,
            source=f"the listing of {src.location}",
        )
        if tally.cleared(deletes, withheld):
            delete_objects(
                deletes,
                store,
                dry_run=options.dry_run,
                workers=options.workers,
                record=tally.record,
                interrupted=tally.interrupted,
                stopping=tally.stopping,
            )
    report.duration = clock() - started
    reporter.finish(report, "copy")
    return report
