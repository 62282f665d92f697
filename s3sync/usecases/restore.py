"""The restore use case: make a local directory mirror the objects under a prefix."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from s3sync import engine, walker
from s3sync.compression import (
    CHUNK,
    SOURCE_MD5_KEY,
    SOURCE_SIZE_KEY,
    CorruptGzip,
    gunzip_chunks,
)
from s3sync.diff import (
    Compare,
    DeleteLimit,
    Matcher,
    delete_guard,
    restore_reason,
    withheld_by_errors,
)
from s3sync.errors import Disposition, RemoteError, S3SyncError, classify
from s3sync.filters import Filter
from s3sync.hashing import HIDES_MD5, Verdict, hash_file, md5_shaped, settle
from s3sync.localtree import LocalTree, PathRefused, Pending, abandoned, is_temp_name
from s3sync.model import (
    Download,
    ObjectInfo,
    Outcome,
    Problem,
    Reason,
    RemoveLocal,
    Report,
    Settled,
    Severity,
    Stat,
    mtime_from_text,
)
from s3sync.pages import GENERATED_KEY
from s3sync.paths import Location, unsafe_relpath
from s3sync.tally import Tally

if TYPE_CHECKING:
    from s3sync.progress import Reporter
    from s3sync.store.remote import ObjectStore

Page = list[tuple[str, Stat]]
_WALK = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreOptions:
    """How a restore behaves; the CLI's flags with the same defaults."""

    workers: int = 16
    delete: bool = False
    dry_run: bool = False
    filters: tuple[tuple[bool, str], ...] = ()
    allow_empty_source: bool = False
    max_delete: DeleteLimit | None = None
    compare: Compare = Compare.MTIME
    force: bool = False
    ignore_existing: bool = False
    limit: int | None = None


class _Generated(Exception):
    """The object is a generated index page: not restored."""


def file_mtime(info: ObjectInfo) -> int:
    """Return the mtime a restored file gets: the ``mtime`` metadata, else LastModified."""
    recorded = mtime_from_text(info.metadata.get("mtime", ""))
    return info.last_modified_ns if recorded is None else recorded


def _is_generated(info: ObjectInfo) -> bool:
    return info.metadata.get(GENERATED_KEY, "").lower() == "true"


def _verify(
    action: Download,
    *,
    store: ObjectStore,
    tree: LocalTree,
    compare: Compare,
    retried: list[BaseException],
    mark: bool,
) -> Outcome | tuple[Download, int]:
    """Decide an UNVERIFIED pair: an unchanged outcome, or the download and bytes hashed.

    A file of the object's size is compared by content first where the listed ETag
    can be an MD5 (no request: a file that holds the object's bytes is never fetched
    again, whatever its mtime); the object is asked (HEAD) only when that cannot tell:
    a generated page, a compressed object, an ETag that is no MD5 (then the ``mtime``
    the object recorded of its file decides).
    """
    local = action.local
    assert local is not None
    path = os.path.join(tree.root, action.path)
    asked: list[ObjectInfo] = []

    def head() -> ObjectInfo:
        if not asked:
            asked.append(store.head(action.key, on_retry=retried.append))
        return asked[0]

    def same(etag: str | None, hashed: int, by: Settled) -> Outcome:
        if mark and etag:
            tree.mark(action.path, etag, local.mtime_ns)
        unchanged = action._replace(reason=by.reason(same=True))
        kept = Outcome(unchanged, retries=len(retried), unchanged=True, hashed=hashed)
        return kept._replace(settled=by)

    known: Verdict | None = None
    if local.size == action.stat.size and md5_shaped(action.stat.etag or ""):
        known = settle(
            path, action.stat, mtime_ns=local.mtime_ns, part_sizes=(), head=head, by_mtime=False
        )
        if known.same:
            return same(action.stat.etag, known.read, Settled.CONTENT)
    hashed = known.read if known is not None else 0
    if compare is Compare.CHECKSUM and local.size == action.stat.size:
        return action._replace(reason=Reason.CONTENT), hashed
    info = head()
    if _is_generated(info):
        return Outcome(action, retries=len(retried), unchanged=True, hashed=hashed)
    if SOURCE_SIZE_KEY in info.metadata:  # compressed: what it recorded of its file decides
        if info.metadata[SOURCE_SIZE_KEY] != str(local.size):
            return action._replace(reason=Reason.SIZE), hashed
        if compare is Compare.CHECKSUM or file_mtime(info) != local.mtime_ns:
            hasher, more = hash_file(path, ())
            if hasher.single().strip('"') == info.metadata.get(SOURCE_MD5_KEY):
                return same(info.etag, hashed + more, Settled.CONTENT)
            return action._replace(reason=Reason.CONTENT), hashed + more
    elif local.size != action.stat.size:
        return action._replace(reason=Reason.SIZE), hashed
    elif known is not None and known.by is Settled.CONTENT and info.encryption not in HIDES_MD5:
        return action._replace(reason=Reason.CONTENT), hashed
    if file_mtime(info) == local.mtime_ns:
        return same(info.etag, hashed, Settled.METADATA)
    return action._replace(reason=Reason.MTIME), hashed


def _packed_size(info: ObjectInfo) -> int | None:
    """Return the size of the file a push compressed into the object *info*, or None
    when it holds the file's bytes as they are."""
    recorded = info.metadata.get(SOURCE_SIZE_KEY, "")
    if info.headers.get("ContentEncoding") != "gzip" or not recorded.isdigit():
        return None
    return int(recorded)


def _decoded(info: ObjectInfo, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Return the bytes of the file an object holds: a push with gzip compressed it."""
    size = _packed_size(info)
    return chunks if size is None else gunzip_chunks(chunks, expected_size=size)


def _perform_download(
    action: Download,
    *,
    store: ObjectStore,
    tree: LocalTree,
    options: RestoreOptions,
    failed: RemoteError | None = None,
) -> Outcome:
    """Perform *action* on a worker; *failed* is how the attempt ``_start_download``
    made failed: this one is its retry."""
    retried: list[BaseException] = []
    hashed = 0
    settled: Settled | None = None
    try:
        if action.reason is Reason.UNVERIFIED:
            decided = _verify(
                action,
                store=store,
                tree=tree,
                compare=options.compare,
                retried=retried,
                mark=not options.dry_run,
            )
            if isinstance(decided, Outcome):
                return decided
            action, hashed = decided
            settled = _CHECKED_BY.get(action.reason)
        if options.dry_run:
            gated = Outcome(action, dry_run=True, retries=len(retried), hashed=hashed)
            return gated._replace(settled=settled)

        def write(info: ObjectInfo, chunks: Iterator[bytes]) -> None:
            if _is_generated(info):
                raise _Generated
            tree.write(
                action.path, _decoded(info, chunks), mtime_ns=file_mtime(info), etag=info.etag
            )

        store.download(
            action.key, write, on_retry=retried.append, size=action.stat.size, failed=failed
        )
    except (_Generated, RemoteError, CorruptGzip, OSError) as exc:
        return _failed(action, exc, len(retried), hashed)._replace(settled=settled)
    return Outcome(action, None, len(retried), hashed=hashed, settled=settled)


# how a download's check settled that the file differs, by the reason it gave
_CHECKED_BY = {Reason.CONTENT: Settled.CONTENT, Reason.MTIME: Settled.METADATA}


def _failed(action: Download, exc: BaseException, retries: int, hashed: int = 0) -> Outcome:
    """Return the outcome of a download that raised *exc*."""
    if isinstance(exc, _Generated):
        return Outcome(action, retries=retries, unchanged=True)
    if isinstance(exc, RemoteError):
        fatal = classify(exc) is Disposition.FATAL
        return Outcome(action, str(exc), retries, fatal=fatal, hashed=hashed)
    if isinstance(exc, CorruptGzip):
        return Outcome(action, str(exc), retries, hashed=hashed)
    if isinstance(exc, PathRefused):
        return Outcome(action, f"refused: {exc.strerror}", retries, hashed=hashed)
    if isinstance(exc, IsADirectoryError):
        return Outcome(action, "a directory is in the way", retries, hashed=hashed)
    if isinstance(exc, OSError):
        return Outcome(action, f"cannot write: {exc.strerror or exc}", retries, hashed=hashed)
    raise exc


def _start_download(
    action: Download,
    runners: engine.Runners[Outcome | None],
    *,
    store: ObjectStore,
    tree: LocalTree,
    perform: Callable[[Download, RemoteError], Outcome | None],
) -> Future[Outcome | None] | None:
    """Begin *action* with the store writing the file itself, when it can: no worker
    thread waits on the request, and the reporting thread settles its end. Return None
    for the workers to perform it: when a check comes first, or the store or the file
    system cannot take it that way (the error is met there again, and told).

    The reporting thread creates the temporary file, as it renames it at the end: a
    worker doing it cost more in hand-offs between threads than the file itself. What
    it cannot settle goes back to the workers: a failure that may pass is retried there
    (*perform*, within the same --retries), and an object pushed with gzip is
    decompressed there from the bytes already fetched."""
    if action.reason is Reason.UNVERIFIED:
        return None
    try:
        pending = tree.begin(action.path)
    except OSError:
        return None
    future: Future[Outcome | None] = Future()
    if pending is None or not _fetch(action, pending, future, runners, store, tree, perform):
        return None
    return future


def _fetch(
    action: Download,
    pending: Pending,
    future: Future[Outcome | None],
    runners: engine.Runners[Outcome | None],
    store: ObjectStore,
    tree: LocalTree,
    perform: Callable[[Download, RemoteError], Outcome | None],
) -> bool:
    """Start the GET of *action* into *pending*, its end settling *future* on the
    reporting thread; return False (the file abandoned) when the store cannot."""

    def settle(answer: ObjectInfo | RemoteError) -> None:
        if isinstance(answer, RemoteError):
            pending.abandon()
            if classify(answer) is Disposition.RETRY:
                engine.chain(runners.later(lambda: perform(action, answer)), future)
            else:
                future.set_result(_failed(action, answer, 0))
        elif _is_generated(answer):
            pending.abandon()
            future.set_result(_failed(action, _Generated(), 0))
        elif _packed_size(answer) is not None:
            engine.chain(runners.later(lambda: _unpack(action, answer, pending, tree)), future)
        else:
            try:
                pending.commit(mtime_ns=file_mtime(answer), etag=answer.etag, size=answer.size)
            except OSError as exc:
                future.set_result(_failed(action, exc, 0))
            else:
                future.set_result(Outcome(action))

    told = engine.settling(future, settle)
    if not store.download_to_file(action.key, pending.path, action.stat.size, told, runners.here):
        pending.abandon()
        return False
    return True


def _unpack(action: Download, info: ObjectInfo, pending: Pending, tree: LocalTree) -> Outcome:
    """Write the file a compressed object holds from the copy *pending* fetched."""
    try:
        with open(pending.path, "rb") as packed:
            chunks = iter(lambda: packed.read(CHUNK), b"")
            tree.write(
                action.path, _decoded(info, chunks), mtime_ns=file_mtime(info), etag=info.etag
            )
    except (CorruptGzip, OSError) as exc:
        return _failed(action, exc, 0)
    finally:
        pending.abandon()
    return Outcome(action)


def _perform_remove(action: RemoveLocal, *, tree: LocalTree) -> Outcome:
    try:
        tree.remove(action.path)
    except FileNotFoundError:
        pass  # already gone: what we wanted
    except OSError as exc:
        return Outcome(action, f"cannot remove: {exc.strerror or exc}")
    return Outcome(action)


def run(
    src: Location,
    dest: str,
    store: ObjectStore,
    reporter: Reporter,
    options: RestoreOptions,
    *,
    cancel: threading.Event | None = None,
    halt: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    keep_actions: bool = True,
) -> Report:
    """Download what is missing or different under *dest*; with ``delete``, remove extras.

    Keys that would land outside *dest* are refused and reported; nothing is written
    through a symlink. Local removals run last and only after a clean run that no guard
    objects to (an empty listing, ``max_delete``). Interruption as in push.
    """
    started = clock()
    report = Report(command="restore", dry_run=options.dry_run, keep_actions=keep_actions)
    tally = Tally(report, reporter, limit=options.limit, cancel=cancel, halt=halt)
    filters = Filter(options.filters)
    counts = {"local": 0, "remote": 0}

    def note(problem: Problem) -> None:
        report.note(problem)
        reporter.problem(problem)

    try:
        tree = LocalTree(dest)
        if not options.dry_run:
            tree.check_writable()
    except S3SyncError as exc:
        report.fatal = str(exc)
        reporter.finish(report, "restore")
        return report
    fold = tree.folding()
    claimed: dict[str, str] = {}

    def pair(relpath: str, local: Stat, remote: Stat) -> Download | None:
        if options.ignore_existing:
            return None
        if options.force:
            reason: Reason | None = Reason.FORCED
        else:
            reason = restore_reason(remote, local, compare=options.compare)
        if reason is None:
            return None
        return Download(src.key(relpath), relpath, remote, reason, local)

    matcher: Matcher[Download] = Matcher(
        pair,
        new_remote=lambda relpath, stat: Download(src.key(relpath), relpath, stat, Reason.NEW),
    )

    def local_events() -> Iterable[list[walker.LocalEntry | Problem] | engine.Ended]:
        return engine.telling_end(
            walker.scan_batches(dest, filters=filters, follow_symlinks=False, marks=True)
        )

    def remote_events() -> Iterable[Page | engine.Retried]:
        return engine.counting_retries(
            lambda on_retry: store.list_pages(src.prefix, on_retry=on_retry)
        )

    def remote_entry(key: str, stat: Stat) -> Iterator[Download]:
        relpath = key[len(src.prefix) :]
        if not relpath or relpath.endswith("/"):
            return  # the prefix itself, or a directory marker
        why = unsafe_relpath(relpath)
        if why is not None:
            note(
                Problem(key, f"refused, would land outside the destination: {why}", Severity.ERROR)
            )
            return
        if not filters.included(relpath):
            return
        if fold is not None:
            first = claimed.setdefault(fold(relpath), relpath)
            if first != relpath:
                note(
                    Problem(
                        key, f"refused: same name as '{first}' on this file system", Severity.ERROR
                    )
                )
                return
        counts["remote"] += 1
        yield from tally.planned(matcher.remote(relpath, stat))

    def local_entry(relpath: str, stat: Stat) -> Iterator[Download]:
        if is_temp_name(relpath):  # never a real name; removed once its writer is gone
            if abandoned(relpath) and not options.dry_run:
                tree.remove(relpath)
            return
        counts["local"] += 1
        yield from tally.planned(matcher.local(relpath, stat))

    def handle(source: int, item: object) -> Iterator[Download]:
        if isinstance(item, Problem):
            note(item)
        elif isinstance(item, engine.Retried):
            report.retries += item.requests
        elif isinstance(item, engine.Ended):  # the local scan: an object no file matched is new
            for action in matcher.end_local():
                yield from tally.planned(action)
        elif source == _WALK:
            for entry in walker.entries(cast(list[walker.LocalEntry | Problem], item), note):
                yield from local_entry(*entry)
        else:
            for key, stat in cast(Page, item):
                yield from remote_entry(key, stat)

    def transfer(action: Download, failed: RemoteError | None = None) -> Outcome:
        return _perform_download(action, store=store, tree=tree, options=options, failed=failed)

    perform = tally.gate(transfer, dry_run=options.dry_run)

    again = functools.partial(tally.again, transfer)

    def start(
        action: Download, runners: engine.Runners[Outcome | None]
    ) -> Future[Outcome | None] | None:
        return _start_download(action, runners, store=store, tree=tree, perform=again)

    tally.stream(
        [local_events, remote_events],
        handle,
        tuple,  # the local scan has ended: no object is left waiting
        perform,
        workers=options.workers,
        in_flight=store.window,
        start=None if options.dry_run else start,
        hold=lambda source: matcher.ahead(local=source == _WALK),
    )
    report.unchanged += matcher.unchanged
    tally.finish()

    if options.delete and not report.limited:  # a run cut short by --limit removes nothing
        removals = [RemoveLocal(rel) for rel, _ in sorted(matcher.local_leftovers())]
        withheld = withheld_by_errors(report, halted=tally.halt.is_set()) or delete_guard(
            deletes=len(removals),
            local_files=counts["remote"],  # the "source" of a restore is the bucket
            remote_objects=counts["local"],
            allow_empty_source=options.allow_empty_source,
            limit=options.max_delete,
            source=f"the listing of {src}",
        )
        if tally.cleared(removals, withheld):

            def remove(action: RemoveLocal) -> Outcome:
                if options.dry_run:
                    return Outcome(action, dry_run=True)
                return _perform_remove(action, tree=tree)

            engine.drive(
                engine.apply(removals, remove, workers=0, cancel=tally.stopping),
                tally.record,
                tally.interrupted,
            )
            if not options.dry_run:
                tree.prune(r.path for r in removals)
    tree.close()
    report.duration = clock() - started
    reporter.finish(report, "restore")
    return report
