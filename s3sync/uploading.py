"""Uploading one file: on a worker, or started off the workers and settled by the
reporting thread."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, NamedTuple

from s3sync import engine
from s3sync.compression import SOURCE_MD5_KEY, SOURCE_SIZE_KEY, GzipSource
from s3sync.diff import Compare
from s3sync.errors import Disposition, RemoteError, classify
from s3sync.etags import used_part_size
from s3sync.hashing import hash_file, settle
from s3sync.headers import DIGEST_KEY, Headers, digest, gzipped_digest
from s3sync.model import (
    ObjectInfo,
    Outcome,
    Reason,
    Settled,
    Upload,
    mtime_from_text,
    mtime_to_text,
)
from s3sync.pages import GENERATED_KEY, PAGE_TYPE
from s3sync.snapshot import Snapshot, SourceChanged

if TYPE_CHECKING:
    from s3sync.push_options import PushOptions
    from s3sync.store.remote import ObjectStore

# a file up to this size may be read by the reporting thread and sent with no worker
# waiting on it: the requests in flight (four per worker) hold at most this much each
PUT_LATER_MAX = 1024 * 1024


class Due(NamedTuple):
    """A file a content check found to differ from its object: the upload with the
    reason the check gave, and what the check cost."""

    upload: Upload
    hashed: int
    settled: Settled
    retries: int


def perform_upload(
    upload: Upload,
    *,
    root: str,
    store: ObjectStore,
    content_type: Callable[[str], str],
    options: PushOptions,
    failed: RemoteError | None = None,
) -> Outcome:
    """Perform *upload* on a worker: check first when its reason asks, then store the
    file (or the generated page), or fix the object's headers in place. *failed* is how
    the attempt ``start_upload`` made failed: this one is its retry."""
    if not is_content_check(upload, options):
        return _perform(upload, root, store, content_type, options, failed)
    found = check_content(
        upload, root=root, store=store, content_type=content_type, options=options
    )
    if isinstance(found, Outcome):
        return found
    done = _perform(found.upload, root, store, content_type, options, failed)
    return done._replace(
        retries=done.retries + found.retries,
        hashed=done.hashed + found.hashed,
        settled=found.settled,
    )


def is_content_check(upload: Upload, options: PushOptions) -> bool:
    """Return whether *upload* starts with ``check_content``: a file of the object's
    size whose content may be the object's (a compressed one is checked by HEAD)."""
    return (
        upload.reason is Reason.UNVERIFIED
        and upload.content is None
        and upload.previous is not None
        and not options.headers.gzipped(upload.path)
    )


def check_content(
    upload: Upload,
    *,
    root: str,
    store: ObjectStore,
    content_type: Callable[[str], str],
    options: PushOptions,
) -> Outcome | Due:
    """Settle whether the file of an UNVERIFIED *upload* holds its object's bytes
    (``hashing.settle``): the outcome when it does (its headers set right, when they
    may not be) or when the check failed, else how it went, for the upload to follow."""
    assert upload.previous is not None
    retried: list[BaseException] = []
    path = os.path.join(root, upload.path)
    try:
        verdict = settle(
            path,
            upload.previous,
            mtime_ns=upload.stat.mtime_ns,
            part_sizes=[used_part_size(upload.stat.size, options.part_size)],
            head=lambda: store.head(upload.key, on_retry=retried.append),
            by_mtime=options.compare is Compare.MTIME,
        )
        if not verdict.same:
            changed = upload._replace(reason=verdict.by.reason(same=False))
            return Due(changed, verdict.read, verdict.by, len(retried))
        kept = upload._replace(reason=verdict.by.reason(same=True))
        found = Outcome(
            kept,
            None,
            unchanged=True,
            hashed=verdict.read,
            hashes=verdict.hashes,
            headers=upload.previous.headers,  # the index keeps what it knew
            settled=verdict.by,
        )
        intended = functools.cache(
            lambda: _intended(upload, path, options.headers, content_type)
        )  # worked out once, and only when asked: a type may be read from the file
        if _headers_in_doubt(kept, options, lambda: intended()[2]):
            fields, metadata, wanted = intended()
            info = store.head(upload.key, on_retry=retried.append)
            fixed = _in_place(kept, info, fields, metadata, wanted, store, options, retried)
            found = fixed._replace(hashed=verdict.read, hashes=verdict.hashes, settled=verdict.by)
        return found._replace(retries=len(retried))
    except RemoteError as exc:
        return _failed(upload, exc, len(retried))
    except OSError as exc:
        return unreadable(upload, exc, len(retried))


def _perform(
    upload: Upload,
    root: str,
    store: ObjectStore,
    content_type: Callable[[str], str],
    options: PushOptions,
    failed: RemoteError | None,
) -> Outcome:
    """Perform *upload*, whose content is known to differ (or need not be checked)."""
    retried: list[BaseException] = []
    path = os.path.join(root, upload.path)
    hashed = 0
    gzipped = options.headers.gzipped(upload.path)

    @functools.cache
    def intended() -> tuple[dict[str, str], dict[str, str], str]:
        """The object's headers and their digest: worked out only when needed (the type
        of a file without a known extension is read from its first bytes)."""
        if upload.content is not None:
            fields, metadata = page_headers(options.headers, upload.path)
            return fields, metadata, digest(fields, metadata)
        return _intended(upload, path, options.headers, content_type)

    try:
        if upload.content is not None:  # a generated page: the bytes are here
            if options.dry_run:
                return Outcome(upload, dry_run=True)
            fields, metadata, wanted = intended()
            extra = {**fields, "Metadata": {**metadata, DIGEST_KEY: wanted}}
            sent = store.put_bytes(upload.key, upload.content, extra=extra, on_retry=retried.append)
            return Outcome(upload, None, len(retried), etag=sent, headers=wanted)
        if upload.reason is Reason.HEADERS or (upload.reason is Reason.UNVERIFIED and gzipped):
            fields, metadata, wanted = intended()
            info = store.head(upload.key, on_retry=retried.append)
            why, hashed = _compare_object(upload, info, path, wanted, options.compare)
            if why is None:
                return _in_place(upload, info, fields, metadata, wanted, store, options, retried)
            upload = upload._replace(reason=why)
        if options.dry_run:
            return Outcome(upload, dry_run=True, hashed=hashed)
        fields, metadata, wanted = intended()
        upload, etag = _upload_one_version(
            upload,
            path,
            store,
            fields,
            {**metadata, DIGEST_KEY: wanted},
            retried,
            gzipped=gzipped,
            failed=failed,
        )
    except RemoteError as exc:
        return _failed(upload, exc, len(retried), hashed)
    except OSError as exc:
        return unreadable(upload, exc, len(retried), hashed)
    except SourceChanged as exc:
        message = f"{exc} {CHANGE_ATTEMPTS} times; not uploaded (the next run tries again)"
        return Outcome(upload, message, len(retried), hashed=hashed)
    return _uploaded(
        upload, etag, len(retried), intended()[2], options, gzipped=gzipped, hashed=hashed
    )


def unreadable(upload: Upload, exc: OSError, retries: int, hashed: int = 0) -> Outcome:
    """Return the outcome of *upload* whose file vanished or cannot be read."""
    what = "vanished" if isinstance(exc, FileNotFoundError) else "cannot be read"
    return Outcome(upload, f"file {what}: {exc.strerror or exc}", retries, hashed=hashed)


def _headers_in_doubt(upload: Upload, options: PushOptions, wanted: Callable[[], str]) -> bool:
    """Return whether the object of a file found unchanged may lack the headers it
    should have (their digest: *wanted*), as ``diff.push_pair`` asks of the pairs the
    rule leaves alone: when the index knows the object's digest, it must be that one;
    when not, only header rules make a HEAD worth it."""
    if options.force or options.ignore_existing:
        return False
    known = upload.previous.headers if upload.previous is not None else None
    if known is None:
        return options.headers.configured
    return known != wanted()


def start_upload(
    upload: Upload,
    runners: engine.Runners[Outcome | None],
    *,
    root: str,
    store: ObjectStore,
    content_type: Callable[[str], str],
    options: PushOptions,
    again: Callable[[Upload, RemoteError], Outcome | None],
) -> Future[Outcome | None] | None:
    """Begin *upload* with no worker thread waiting on it, when it is a small file sent
    as it is (no check first, not compressed, not a generated page) and the store can:
    the reporting thread reads one version of it, the store sends it, and the reporting
    thread settles the end. Return None for the workers to perform it.

    A failure that may pass is handed to ``again`` on the workers, which retries it.
    """
    if (
        upload.content is not None
        or upload.reason in (Reason.HEADERS, Reason.UNVERIFIED)
        or upload.stat.size > PUT_LATER_MAX
        or options.headers.gzipped(upload.path)
    ):
        return None
    path = os.path.join(root, upload.path)
    try:
        with Snapshot(path) as snapshot:  # its size now decides, not the scan's
            size = snapshot.stat.size
            if size > PUT_LATER_MAX or not store.can_put_later(size):
                return None
            body = snapshot.read_all()
    except (OSError, SourceChanged, RemoteError):
        return None  # the workers meet it again, and tell it
    fields, metadata, wanted = _intended(upload, path, options.headers, content_type)
    sent = _stamped({**metadata, DIGEST_KEY: wanted}, snapshot)
    future: Future[Outcome | None] = Future()

    def settle(answer: str | RemoteError) -> None:
        if isinstance(answer, str):
            read = _as_read(upload, snapshot)
            future.set_result(_uploaded(read, answer, 0, wanted, options, gzipped=False))
        elif classify(answer) is Disposition.RETRY:
            engine.chain(runners.later(lambda: again(upload, answer)), future)
        else:
            future.set_result(_failed(upload, answer, 0))

    store.put_later(
        upload.key,
        body,
        headers=fields,
        metadata=sent,
        finished=engine.settling(future, settle),
        post=runners.here,
    )
    return future


def _intended(
    upload: Upload, path: str, headers: Headers, content_type: Callable[[str], str]
) -> tuple[dict[str, str], dict[str, str], str]:
    """Return the headers and metadata the object of the file *path* gets, and their
    digest (the type of a file without a known extension is read from its first bytes)."""
    fields, metadata = headers.for_path(upload.path, lambda: content_type(path))
    return fields, metadata, digest(fields, metadata)


def _stamped(metadata: Mapping[str, str], snapshot: Snapshot) -> dict[str, str]:
    """Return *metadata* with the ``mtime`` of the version *snapshot* read."""
    return {**metadata, "mtime": mtime_to_text(snapshot.stat.mtime_ns)}


def _as_read(upload: Upload, snapshot: Snapshot) -> Upload:
    """Return *upload* with the size and mtime of the version *snapshot* read (the index
    records what was stored, not what the scan saw)."""
    read = upload.stat._replace(size=snapshot.stat.size, mtime_ns=snapshot.stat.mtime_ns)
    return upload._replace(stat=read)


def _uploaded(
    upload: Upload,
    etag: str,
    retries: int,
    wanted: str,
    options: PushOptions,
    *,
    gzipped: bool,
    hashed: int = 0,
) -> Outcome:
    """The outcome of a file (*gzipped*: compressed) stored as the object *etag* with the
    headers *wanted*."""
    hashes: tuple[tuple[int, str], ...] = ()
    if options.compare is Compare.CHECKSUM and not gzipped:
        hashes = ((options.layout(upload.stat.size), etag),)  # the file's hash, for the cache
    return Outcome(upload, None, retries, etag=etag, hashed=hashed, hashes=hashes, headers=wanted)


def _failed(upload: Upload, exc: RemoteError, retries: int, hashed: int = 0) -> Outcome:
    fatal = classify(exc) is Disposition.FATAL
    return Outcome(upload, str(exc), retries, fatal=fatal, hashed=hashed)


def page_headers(headers: Headers, relpath: str) -> tuple[dict[str, str], dict[str, str]]:
    """Return the headers of the generated page *relpath*: the rules', as HTML, marked."""
    fields, metadata = headers.for_path(relpath, lambda: PAGE_TYPE)
    return {**fields, "ContentType": PAGE_TYPE}, {**metadata, GENERATED_KEY: "true"}


def _compare_object(
    upload: Upload, info: ObjectInfo, path: str, wanted: str, compare: Compare
) -> tuple[Reason | None, int]:
    """Return why the object *info* does not hold the file of *upload* in the encoding its
    headers *wanted* say (None: it does; only its headers may differ), and bytes hashed.

    A compressed object records the size and MD5 of its file in metadata, and its mtime
    as every object does: the same size and mtime mean the same file; another mtime
    (or checksum mode) is settled by the MD5, as the listing's ETag settles the others.
    """
    gzipped = gzipped_digest(wanted)
    if gzipped != (SOURCE_SIZE_KEY in info.metadata):
        return Reason.ENCODING, 0
    if not gzipped:  # only its headers were in doubt: the rule said the file is unchanged
        return None, 0
    local = upload.stat
    if info.metadata[SOURCE_SIZE_KEY] != str(local.size):
        return Reason.SIZE, 0
    if compare is Compare.SIZE:
        return None, 0
    recorded = mtime_from_text(info.metadata.get("mtime", ""))
    if compare is Compare.MTIME and recorded == local.mtime_ns:
        return None, 0
    if SOURCE_MD5_KEY not in info.metadata:
        return (Reason.CONTENT if compare is Compare.CHECKSUM else Reason.MTIME), 0
    # another mtime is ambiguous (the same bytes written again): the file's MD5 decides
    hasher, hashed = hash_file(path, ())
    same = hasher.single().strip('"') == info.metadata[SOURCE_MD5_KEY]
    return (None if same else Reason.CONTENT), hashed


# metadata s3sync keeps on an object whose headers are replaced: it describes the bytes
_KEPT_ON_FIX = ("partsize", SOURCE_SIZE_KEY, SOURCE_MD5_KEY)


def _in_place(
    upload: Upload,
    info: ObjectInfo,
    fields: Mapping[str, str],
    metadata: Mapping[str, str],
    wanted: str,
    store: ObjectStore,
    options: PushOptions,
    retried: list[BaseException],
) -> Outcome:
    """Give the object *info* of an unchanged file the headers it should have, in place
    (CopyObject onto itself: no bytes move), or leave it when it has them."""
    if info.metadata.get(DIGEST_KEY) == wanted:
        return Outcome(upload, None, len(retried), unchanged=True, etag=info.etag, headers=wanted)
    fix = upload._replace(reason=Reason.HEADERS)
    if options.dry_run:
        return Outcome(fix, dry_run=True)
    kept = {k: v for k, v in info.metadata.items() if k in _KEPT_ON_FIX}
    replaced = {
        **metadata,
        **kept,
        DIGEST_KEY: wanted,
        "mtime": info.metadata.get("mtime") or mtime_to_text(upload.stat.mtime_ns),
    }
    etag = store.replace_headers(upload.key, fields, replaced, on_retry=retried.append)
    return Outcome(fix, None, len(retried), etag=etag, headers=wanted)


CHANGE_ATTEMPTS = 3


def _upload_one_version(
    upload: Upload,
    path: str,
    store: ObjectStore,
    headers: Mapping[str, str],
    metadata: Mapping[str, str],
    retried: list[BaseException],
    *,
    gzipped: bool,
    failed: RemoteError | None = None,
) -> tuple[Upload, str]:
    """Upload one consistent version of the file (*gzipped*: compressed); return the
    upload as it went, and the ETag.

    A file written while being read is read again from the start, up to CHANGE_ATTEMPTS
    times (then SourceChanged); the object and its ``mtime`` metadata always describe the
    version that was read, which the returned upload's stat records for the index.
    """
    for attempt in range(CHANGE_ATTEMPTS):
        with Snapshot(path) as snapshot:
            try:
                source: Snapshot | GzipSource = snapshot
                sent = _stamped(metadata, snapshot)
                if gzipped:
                    source = GzipSource(snapshot)
                    sent.update(source.metadata())
                etag = store.put_file(
                    upload.key,
                    source,
                    headers=headers,
                    metadata=sent,
                    on_retry=retried.append,
                    failed=failed if attempt == 0 else None,
                )
            except SourceChanged:
                if attempt + 1 == CHANGE_ATTEMPTS:
                    raise
                continue
            return _as_read(upload, snapshot), etag
    raise AssertionError("unreachable")
