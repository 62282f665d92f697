"""The push use case: make the objects under a prefix mirror a local directory."""

from __future__ import annotations

import functools
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, cast

from s3sync import engine, walker
from s3sync.deleting import delete_objects
from s3sync.diff import (
    LEAD,
    Compare,
    Matcher,
    delete_guard,
    push_pair,
    push_rule,
    same_etag,
    withheld_by_errors,
)
from s3sync.errors import ExitCode, RemoteError, SourceError
from s3sync.etags import cached_verdict, md5, used_part_size
from s3sync.filters import Filter, Groups
from s3sync.headers import Headers, digest, gzipped_digest
from s3sync.index import Binding, Index, IndexUnusable
from s3sync.invalidating import invalidate
from s3sync.model import (
    Delete,
    Outcome,
    Problem,
    Reason,
    Report,
    Severity,
    Stat,
    Upload,
)
from s3sync.paths import Location, ascii_room, key_problem
from s3sync.push_options import PushOptions
from s3sync.tally import Tally

if TYPE_CHECKING:
    from concurrent.futures import Future

    from s3sync.checking import Checked, ContentChecks
    from s3sync.pages import Directories
    from s3sync.progress import Reporter
    from s3sync.store.remote import CloudFront, ObjectStore


Page = Iterable[tuple[str, Stat]]
_REMOTE, _WALK = 0, 1  # the remote side first: inline, an index is read before the walk


def _page_uploads(
    directories: Directories,
    dest: Location,
    headers: Headers,
    matcher: Matcher[Upload],
    *,
    force: bool,
    unchanged: Callable[[str, Stat], None],
) -> Iterator[Upload]:
    """Yield the uploads of the listing pages that are missing or differ from their
    objects (known by ETag: a page is one PutObject of its bytes, so the ETag is their
    MD5); claim each page's object so it is not deleted."""
    from s3sync.compression import gzip_bytes
    from s3sync.uploading import page_headers

    def note(relpath: str) -> str:
        return "headers " + digest(*page_headers(headers, relpath))

    for relpath, page in directories.pages(note):
        key = dest.key(relpath)
        if key_problem(key) is not None:
            continue  # its directory's files were reported already
        body = gzip_bytes(page) if headers.gzipped(relpath) else page
        etag = f'"{md5(body).hexdigest()}"'
        remote = matcher.claim_remote(relpath)
        if remote is not None and same_etag(remote.etag, etag) and not force:
            unchanged(relpath, remote)
            continue
        reason = Reason.NEW if remote is None else Reason.CONTENT
        yield Upload(key, relpath, Stat(len(body), 0), reason, remote, content=body)


WITHHELD_BY_ORDER = "not uploaded: an upload of an earlier --order group failed"


def _pass_on(_source: int, action: object) -> list[Upload]:
    return [cast(Upload, action)]


def _open_index(
    options: PushOptions, binding: Binding, warn: Callable[[str], None]
) -> tuple[Index | None, bool]:
    """Return the index to use (or None) and whether it is trusted instead of a listing."""
    if options.index is None:
        return None, False
    if not options.ignore_index:
        try:
            return Index.open(options.index, binding), True
        except FileNotFoundError:
            pass
        except IndexUnusable as exc:
            warn(f"{exc}; listing the bucket and rebuilding it")
    return Index.rebuild(options.index, binding), False


class _Bookkeeper:
    """Keeps the index in step with completed work, from the reporting thread only.

    A trusted index is updated in place, one committed row per completed action. A
    rebuilt one also records what the listing showed unchanged and what stays remote,
    and replaces the old index only when the run got through its listing.
    """

    def __init__(self, index: Index | None, *, dry_run: bool) -> None:
        self._open = index
        self.index = None if dry_run else index

    @property
    def records_unchanged(self) -> bool:
        """Whether ``unchanged`` records anything: only a rebuilt index is told what the
        listing showed unchanged (a trusted one has it already)."""
        return self.index is not None and self.index.fresh

    def unchanged(self, relpath: str, stat: Stat) -> None:
        if self.index is not None and self.index.fresh:
            self.index.put(relpath, stat, stat.etag, stat.headers)

    def done(self, outcome: Outcome, relpath: str) -> None:
        if self.index is None:
            return
        action = outcome.action
        if isinstance(action, Upload):
            if outcome.ok:
                previous = action.previous.etag if action.previous is not None else None
                self.index.put(relpath, action.stat, outcome.etag or previous, outcome.headers)
                self.index.cache_hashes(action.stat, outcome.hashes)
            elif self.index.fresh and action.previous is not None:
                self.index.put(relpath, action.previous)
        elif outcome.ok:
            self.index.remove(relpath)

    def remaining(self, leftovers: Iterable[tuple[str, Stat]]) -> None:
        if self.index is not None and self.index.fresh:
            for relpath, stat in leftovers:
                self.index.put(relpath, stat)

    def finish(self, *, complete: bool, device: int | None) -> None:
        if self.index is not None and complete:
            if device is not None:
                self.index.set_meta("device", str(device))
            self.index.save_snapshot()
            self.index.commit()
        if self._open is not None:
            self._open.close()


def run(
    src: str,
    dest: Location,
    store: ObjectStore,
    reporter: Reporter,
    options: PushOptions,
    *,
    content_type: Callable[[str], str],
    cancel: threading.Event | None = None,
    halt: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    keep_actions: bool = True,
    cdn: CloudFront | None = None,
) -> Report:
    """Upload what changed under *src* to *dest*, then delete what is gone; return the report.

    Deletes run last, and only when both scans ended cleanly, every upload succeeded,
    the run was not interrupted, and no guard objects (see ``diff.delete_guard``). A
    Setting *cancel* (the user's interrupt, as a signal handler does) or a
    KeyboardInterrupt stops new work, lets in-flight uploads finish and is recorded as
    ``report.interrupted``; *halt* stops the run the same way for a fatal reason the
    caller reports. Without *keep_actions* the report counts outcomes without keeping
    them (flat memory on huge runs). Last, when the run succeeded (deletes withheld by a
    guard included), *cdn* invalidates the updated and deleted paths on ``cloudfront``.
    """
    started = clock()
    report = Report(dry_run=options.dry_run, keep_actions=keep_actions)
    filters = Filter(options.filters)
    counts = {"local": 0, "remote": 0}
    aliases: dict[str, str] = {}  # key a server may store a backslashed name as -> the name
    directories: Directories | None = None
    if options.generate_index_html:
        from s3sync.pages import Directories

        directories = Directories()
    failed_uploads = 0  # an upload that failed keeps later --order groups back

    def tell(problem: Problem) -> None:
        report.note(problem)
        reporter.problem(problem)

    def note(problem: Problem) -> None:
        tell(problem)
        if problem.severity is Severity.WARNING:
            matcher.protect(problem.path)

    try:
        root_stat = _source_stat(src, allow_missing=options.delete)
    except SourceError as exc:
        report.fatal = str(exc)
        reporter.finish(report, "push")
        return report
    index, trusted = _open_index(
        options,
        Binding(store.endpoint, dest.bucket, dest.prefix),
        lambda message: tell(Problem(options.index or "", message, Severity.WARNING)),
    )
    books = _Bookkeeper(index, dry_run=options.dry_run)
    report.remote = "index" if trusted else "listing"

    changed: list[str] = []  # keys CloudFront may hold an old copy of

    def done(outcome: Outcome) -> None:
        nonlocal failed_uploads
        # the index before the reporter: whatever was reported done must survive a SIGKILL
        books.done(outcome, dest.relpath(outcome.action.key) or outcome.action.key)
        action = outcome.action
        if not outcome.ok and isinstance(action, Upload):
            failed_uploads += 1
        elif outcome.ok and not outcome.unchanged and options.cloudfront and _served_before(action):
            changed.append(action.key)

    tally = Tally(
        report,
        reporter,
        limit=options.limit,
        cancel=cancel,
        halt=halt,
        on_done=done,
    )

    def verdict(local: Stat, remote: Stat) -> bool | None:
        if index is None or remote.etag is None or local.inode is None:
            return None
        preferred = [used_part_size(local.size, options.part_size)]
        return cached_verdict(index.cached_hashes(local), remote.etag, remote.size, preferred)

    rule_with = functools.partial(
        push_rule,
        compare=options.compare,
        fudge=options.fudge,
        force=options.force,
        ignore_existing=options.ignore_existing,
    )
    # hashes cached by inode settle ambiguous pairs of a listing (or checksum mode); a
    # trusted index needs none in mtime mode: it records each file's mtime as uploaded
    cache = index is not None and (options.compare is Compare.CHECKSUM or not trusted)
    rule = rule_with(exact=trusted, verdict=verdict if cache else None)

    def recheck(relpath: str, remote: Stat) -> Reason | None:
        """Why an unchanged file's object, whose headers' digest is known, must change:
        its headers or its encoding."""
        wanted = options.headers.digest_for(
            relpath, lambda: content_type(os.path.join(src, relpath))
        )
        if wanted == remote.headers:
            return None
        if gzipped_digest(wanted) != gzipped_digest(remote.headers):
            return Reason.ENCODING  # the bytes differ: no fix in place
        return Reason.HEADERS

    # a compressed object's listed size is not the file's: its metadata must tell
    compressed = None
    if options.headers.may_gzip and (not trusted or options.compare is Compare.CHECKSUM):
        compressed = (options.headers.gzipped, rule_with(exact=False, compressed=True))
    header_check = recheck if not (options.force or options.ignore_existing) else None
    # headers not known: worth a HEAD only when headers are set
    unknown_headers = Reason.HEADERS if options.headers.configured else None
    checks = _Checks(src, options, tally, header_check, unknown_headers)
    matcher: Matcher[Upload] = Matcher(
        push_pair(
            dest.key,
            rule,
            books.unchanged if books.records_unchanged else None,
            header_check,
            compressed=compressed,
            unknown_headers=unknown_headers,
        ),
        new_local=lambda relpath, stat: Upload(dest.key(relpath), relpath, stat, Reason.NEW),
        lead=None if trusted else LEAD,  # the index, read first, is all in memory anyway
    )

    def local_events() -> Iterable[list[walker.LocalEntry | Problem]]:
        if root_stat is None:
            return ()
        return walker.scan_batches(
            src,
            filters=filters,
            follow_symlinks=options.follow_symlinks,
            inodes=cache,
        )

    def remote_events() -> Iterable[Page | engine.Retried | engine.Ended]:
        if trusted and index is not None:
            pages: Iterable[Page | engine.Retried] = index.pages()
        else:
            pages = engine.counting_retries(
                lambda on_retry: store.list_pages(dest.prefix, on_retry=on_retry)
            )
        return engine.telling_end(pages)

    def local_batch(batch: list[walker.LocalEntry | Problem]) -> Iterator[Upload]:
        """The actions of a batch of the walk. One loop over the files, not a few calls
        for each: a no-op run with an index spends a quarter of its time here."""
        local, key, planned = matcher.local, dest.key, tally.planned
        room = ascii_room(dest.prefix)
        files = 0
        try:
            for value in batch:
                if isinstance(value, Problem):
                    note(value)
                    continue
                relpath, stat = value
                if not (relpath.isascii() and len(relpath) <= room):
                    problem = key_problem(key(relpath))
                    if problem is not None:
                        note(Problem(relpath, problem, Severity.ERROR))
                        continue
                files += 1
                if directories is not None:
                    directories.add(relpath, stat.size, stat.mtime_ns)
                if "\\" in relpath:  # some servers store it under another name
                    aliases[key(relpath).replace("\\", "/")] = relpath
                action = local(relpath, stat)
                if action is not None:
                    yield from planned(action)
        finally:  # a batch given up halfway still counts what it saw
            counts["local"] += files

    def handle(source: int, item: object) -> Iterator[Upload]:
        if isinstance(item, Problem):
            note(item)
        elif isinstance(item, engine.Retried):
            report.retries += item.requests
        elif isinstance(item, engine.Ended):  # the listing: a file no object matched is new
            for action in matcher.end_remote():
                yield from tally.planned(action)
        elif source == _WALK:
            yield from local_batch(cast(list[walker.LocalEntry | Problem], item))
        else:
            yield from remote_page(cast(Page, item))

    def remote_page(page: Page) -> Iterator[Upload]:
        """The actions of a page of the listing (or of the index), in one loop like
        ``local_batch``: most entries are unchanged and give none."""
        remote, relpath, planned = matcher.remote, dest.relpath, tally.planned
        included = filters.included if filters else None
        seen = 0
        try:
            for key, listed in page:
                rel = key if trusted else relpath(key)
                if rel is None or (included is not None and not included(rel)):
                    continue
                seen += 1
                action = remote(rel, listed)
                if action is not None:
                    yield from planned(action)
        finally:  # a page given up halfway still counts what it saw
            counts["remote"] += seen

    def page_unchanged(relpath: str, remote: Stat) -> None:
        report.unchanged += 1
        books.unchanged(relpath, remote)

    def finish() -> Iterator[Upload]:  # the listing has ended: no file is left waiting
        if directories is not None:
            pages = _page_uploads(
                directories,
                dest,
                options.headers,
                matcher,
                force=options.force,
                unchanged=page_unchanged,
            )
            for upload in pages:
                yield from tally.planned(upload)

    # the upload code is loaded by the first upload: a no-op run never needs it
    def transfer(action: Upload, failed: RemoteError | None = None) -> Outcome:
        from s3sync.uploading import perform_upload

        return perform_upload(
            action,
            root=src,
            store=store,
            content_type=content_type,
            options=options,
            failed=failed,
        )

    perform = tally.gate(transfer, dry_run=options.dry_run)

    def start(
        action: Upload, runners: engine.Runners[Outcome | None]
    ) -> Future[Outcome | None] | None:
        from s3sync.uploading import start_upload

        return start_upload(
            action,
            runners,
            root=src,
            store=store,
            content_type=content_type,
            options=options,
            again=functools.partial(tally.again, transfer),
        )

    begin = None if options.dry_run else start
    order = Groups(options.order)
    later: list[list[Upload]] = [[] for _ in range(len(order) - 1)]

    def first_group(actions: Iterable[Upload]) -> Iterator[Upload]:
        """Pass on the uploads of group 0; hold those of later groups until it is done."""
        for action in actions:
            group = order.of(action.path)
            if group:
                later[group - 1].append(action)
            else:
                yield action

    listed = tally.stream(
        [remote_events, local_events],
        lambda source, item: first_group(checks.divert(handle(source, item))),
        lambda: first_group(itertools.chain(checks.divert(finish()), checks.rest())),
        perform,
        workers=options.workers,
        in_flight=store.window,
        start=begin,
        inline=trusted,  # nothing waits on the network: threads would only contend
        hold=lambda source: matcher.ahead(local=source == _WALK),
    )
    for held in later:  # each group only once every upload before it succeeded
        if not listed or tally.stopping():
            break
        if failed_uploads:
            for action in held:
                tally.record(Outcome(action, WITHHELD_BY_ORDER))
            continue
        tally.stream(
            [functools.partial(list, held)],
            _pass_on,
            tuple,
            perform,
            workers=options.workers,
            in_flight=store.window,
            start=begin,
        )
    checks.close()
    report.unchanged += matcher.unchanged
    tally.finish()
    leftovers = matcher.remote_leftovers()
    if listed:
        books.remaining(leftovers)

    if options.delete and not report.limited:  # a run cut short by --limit deletes nothing
        deletes = [
            Delete(dest.key(rel))
            for rel, _ in leftovers
            if not matcher.is_protected(rel) and not _aliased(rel, dest.key(rel), aliases, tell)
        ]
        withheld = withheld_by_errors(report, halted=tally.halt.is_set()) or delete_guard(
            deletes=len(deletes),
            local_files=counts["local"],
            remote_objects=counts["remote"],
            source_missing=root_stat is None,
            mount_point=root_stat is not None and os.path.ismount(src),
            device_changed=_device_changed(index, trusted, root_stat),
            allow_empty_source=options.allow_empty_source,
            limit=options.max_delete,
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
    books.finish(
        complete=listed and report.fatal is None,
        device=root_stat.st_dev if root_stat is not None else None,
    )
    succeeded = report.exit_code in (ExitCode.OK, ExitCode.DELETES_WITHHELD)
    if cdn is not None and changed and succeeded:

        def count(_exc: BaseException) -> None:
            report.retries += 1

        report.invalidations = invalidate(
            cdn,
            options.cloudfront,
            changed,
            bucket=dest.bucket,
            budget=options.invalidation_budget,
            dry_run=options.dry_run,
            on_retry=count,
            warn=lambda where, text: tell(Problem(where, text, Severity.WARNING)),
        )
        for made in report.invalidations:
            if made.error is not None:
                tell(Problem(made.distribution, made.error, Severity.ERROR))
    report.duration = clock() - started
    reporter.finish(report, "push")
    return report


class _Checks:
    """Settles the ambiguous pairs a check by content alone can (``checking.batchable``)
    on threads of their own, in batches, instead of as actions; finishes each one in
    the main thread the way ``diff.push_pair`` finishes a pair its rule leaves alone."""

    def __init__(
        self,
        root: str,
        options: PushOptions,
        tally: Tally,
        header_check: Callable[[str, Stat], Reason | None] | None,
        unknown_headers: Reason | None,
    ) -> None:
        self._root = root
        self._options = options
        self._tally = tally
        self._header_check = header_check
        self._unknown_headers = unknown_headers
        self._checks: ContentChecks | None = None  # made for the first check

    def divert(self, actions: Iterable[Upload]) -> Iterator[Upload]:
        """Pass on *actions* but the checks taken; then the uploads that the checks
        done so far found due."""
        for action in actions:
            if self._takes(action):
                self._started().take(action)
            else:
                yield action
        if self._checks is not None:
            yield from self._finished(self._checks.ready())

    def rest(self) -> Iterator[Upload]:
        """Wait for the checks still out; yield the uploads they find due."""
        if self._checks is not None:
            yield from self._finished(self._checks.rest())

    def close(self) -> None:
        if self._checks is not None:
            self._checks.close()

    def _takes(self, action: Upload) -> bool:
        if action.reason is not Reason.UNVERIFIED:  # most actions: nothing to import
            return False
        from s3sync.checking import batchable

        return batchable(action) and not self._options.headers.gzipped(action.path)

    def _started(self) -> ContentChecks:
        if self._checks is None:
            from s3sync.checking import ContentChecks

            self._checks = ContentChecks(
                self._root,
                threads=max(1, min(self._options.workers, os.cpu_count() or 1)),
                stopping=self._tally.stopping,
            )
        return self._checks

    def _finished(self, found: Iterable[Checked]) -> Iterator[Upload]:
        """Record each file found unchanged; yield the uploads due (content, headers)."""
        report = self._tally.report
        for upload, verdict, error in found:
            if error is not None:
                from s3sync.uploading import unreadable

                self._tally.record(unreadable(upload, error, 0))
                continue
            if verdict is None:  # the check broke: the workers check it again
                yield upload
                continue
            previous = upload.previous
            assert previous is not None
            kept = upload._replace(reason=verdict.by.reason(same=verdict.same))
            due = None if verdict.same else kept.reason
            if verdict.same and self._header_check is not None:
                due = (
                    self._unknown_headers
                    if previous.headers is None
                    else self._header_check(upload.path, previous)
                )
            if due is None:
                unchanged = Outcome(kept, unchanged=True, hashed=verdict.read)
                self._tally.record(
                    unchanged._replace(
                        hashes=verdict.hashes, headers=previous.headers, settled=verdict.by
                    )
                )
                continue
            report.hashed_bytes += verdict.read  # told here: the upload's outcome will not
            report.settled[verdict.by.value] = report.settled.get(verdict.by.value, 0) + 1
            yield kept._replace(reason=due)


def _served_before(action: object) -> bool:
    """Return whether a CDN may hold a copy of the key *action* changed: it was deleted
    or overwritten (a new key was never there to be cached)."""
    return isinstance(action, Delete) or (
        isinstance(action, Upload) and action.previous is not None
    )


def _aliased(rel: str, key: str, aliases: dict[str, str], tell: Callable[[Problem], None]) -> bool:
    """Return whether *key* (of *rel*) may be a local file's object stored under another
    name (some servers, SeaweedFS among them, turn backslashes into slashes): never
    delete it."""
    name = aliases.get(key)
    if name is None:
        return False
    message = f"not deleted: the server may hold '{name}' under this name (it turns \\ into /)"
    tell(Problem(rel, message, Severity.WARNING))
    return True


def _source_stat(src: str, *, allow_missing: bool) -> os.stat_result | None:
    """Return the source root's stat; None when it is missing and a guard will say so."""
    try:
        walker.check_root(src)
    except SourceError:
        if allow_missing and not os.path.lexists(src):
            return None
        raise
    return os.stat(src)


def _device_changed(index: Index | None, trusted: bool, root: os.stat_result | None) -> bool:
    if index is None or not trusted or root is None:
        return False
    recorded = index.get_meta("device")
    return recorded is not None and recorded != str(root.st_dev)
