"""The public Python API; the CLI is a thin layer over these functions."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO

from s3sync import content_type
from s3sync import lock as lockfile
from s3sync.config import parse_max_delete
from s3sync.diff import Compare, DeleteLimit
from s3sync.errors import ConfigError, S3SyncError
from s3sync.filters import ENTRY_POINTS
from s3sync.headers import Headers, rule_from_table
from s3sync.lease import Lease
from s3sync.model import MAX_REQUESTS, Outcome, Report
from s3sync.paths import Location, endpoint_shown, parse_object_url, parse_s3_url
from s3sync.progress import (
    CallbackReporter,
    LogFileReporter,
    NullReporter,
    Reporter,
    TeeReporter,
)
from s3sync.push_options import PushOptions
from s3sync.store.remote import Connection

MIB = 1024 * 1024


def filter_rules(
    include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[tuple[bool, str], ...]:
    """Return ordered filter rules: every include first, then every exclude."""
    return tuple((True, p) for p in include) + tuple((False, p) for p in exclude)


def push(
    src: str,
    dest: str,
    *,
    workers: int = 16,
    max_requests: int = MAX_REQUESTS,
    fudge: float = 1200.0,
    no_delete: bool = False,
    dry_run: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    filters: Sequence[tuple[bool, str]] | None = None,
    follow_symlinks: bool = True,
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    retries: int = 4,
    timeout: float = 60.0,
    verify_ssl: bool = True,
    multipart_threshold: int = 8 * MIB,
    part_size: int = 8 * MIB,
    progress: Callable[[Outcome], None] | None = None,
    reporter: Reporter | None = None,
    cancel: threading.Event | None = None,
    keep_actions: bool = True,
    index: str | None = None,
    ignore_index: bool = False,
    lock: str | None = None,
    lock_s3: str | None = None,
    allow_empty_source: bool = False,
    max_delete: int | str | None = None,
    log_file: str | None = None,
    compare: str | None = None,
    force: bool = False,
    ignore_existing: bool = False,
    limit: int | None = None,
    content_type: str | None = None,
    order: Sequence[str] | None = None,
    header: Sequence[str] = (),
    header_rules: Sequence[Mapping[str, Any]] = (),
    gzip: bool = False,
    generate_index_html: bool = False,
    cloudfront: Sequence[str] = (),
    invalidation_budget: int = 8,
) -> Report:
    """Mirror the directory *src* to ``s3://BUCKET[/PREFIX]`` *dest*; return the report.

    The keyword arguments are the CLI's options. *filters* (ordered ``(include, glob)``
    pairs) replaces *include*/*exclude*, which apply includes first. *progress* is called
    with every outcome; ``report.outcomes`` keeps them all unless *keep_actions* is
    False. *header* holds ``"Name: value"`` lines for every object, *header_rules* the
    config file's ``[[rules]]`` tables (first match wins). Fatal problems do not raise:
    ``report.fatal`` says what happened and ``report.exit_code`` is 3. A held lock
    raises LockHeld; usage errors ConfigError.
    """
    location = parse_s3_url(dest)
    rules = tuple(filters) if filters is not None else filter_rules(include, exclude)
    if lock_s3 is not None and (not lock_s3 or lock_s3.endswith("/")):
        raise ConfigError(f"--lock-s3 '{lock_s3}' names no object: give a key such as locks/site")
    if lock_s3 is not None and (rel := location.relpath(lock_s3)) is not None:
        rules = ((False, "/" + _glob_escape(rel)), *rules)  # the lease is not part of the tree
    options = PushOptions(
        workers=workers,
        fudge=fudge,
        delete=not no_delete,
        dry_run=dry_run,
        filters=rules,
        follow_symlinks=follow_symlinks,
        index=index,
        ignore_index=ignore_index,
        allow_empty_source=allow_empty_source,
        max_delete=_delete_limit(max_delete),
        compare=_compare(compare or "mtime", force, ignore_existing),
        force=force,
        ignore_existing=ignore_existing,
        limit=limit,
        multipart_threshold=multipart_threshold,
        part_size=part_size,
        headers=Headers(
            [rule_from_table(r, f"header rule {n + 1}") for n, r in enumerate(header_rules)],
            header,
            content_type=content_type,
            gzip=gzip,
        ),
        order=tuple(order) if order else ENTRY_POINTS,
        generate_index_html=generate_index_html,
        cloudfront=tuple(cloudfront),
        invalidation_budget=invalidation_budget,
    )
    connection = Connection(
        endpoint_url=endpoint_url,
        region=region,
        profile=profile,
        retries=retries,
        timeout=timeout,
        verify_ssl=verify_ssl,
        workers=workers,
        max_requests=max_requests,
        multipart_threshold=multipart_threshold,
        part_size=part_size,
    )
    return _command(
        "push",
        lambda out: _push(
            src,
            location,
            options,
            out,
            connection,
            cancel=cancel or threading.Event(),
            lock_s3=lock_s3,
            keep_actions=keep_actions,
        ),
        reporter=reporter,
        progress=progress,
        lock=lock,
        log_file=log_file,
    )


def restore(
    src: str,
    dest: str,
    *,
    workers: int = 16,
    max_requests: int = MAX_REQUESTS,
    delete: bool = False,
    dry_run: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    filters: Sequence[tuple[bool, str]] | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    retries: int = 4,
    timeout: float = 60.0,
    verify_ssl: bool = True,
    lock: str | None = None,
    allow_empty_source: bool = False,
    max_delete: int | str | None = None,
    log_file: str | None = None,
    progress: Callable[[Outcome], None] | None = None,
    reporter: Reporter | None = None,
    cancel: threading.Event | None = None,
    keep_actions: bool = True,
    compare: str | None = None,
    force: bool = False,
    ignore_existing: bool = False,
    limit: int | None = None,
) -> Report:
    """Mirror ``s3://BUCKET[/PREFIX]`` *src* into the directory *dest*; return the report.

    The keyword arguments are the CLI's options, as for ``push``. Only ``delete`` removes
    local files that have no object, and only after a clean run no guard objects to.
    """
    from s3sync.usecases import restore as restore_case  # each use case loads on first use

    location = parse_s3_url(src)
    options = restore_case.RestoreOptions(
        workers=workers,
        delete=delete,
        dry_run=dry_run,
        filters=tuple(filters) if filters is not None else filter_rules(include, exclude),
        allow_empty_source=allow_empty_source,
        max_delete=_delete_limit(max_delete),
        compare=_compare(compare or "mtime", force, ignore_existing),
        force=force,
        ignore_existing=ignore_existing,
        limit=limit,
    )
    connection = Connection(
        endpoint_url=endpoint_url,
        region=region,
        profile=profile,
        retries=retries,
        timeout=timeout,
        verify_ssl=verify_ssl,
        workers=workers,
        max_requests=max_requests,
    )

    def body(out: Reporter) -> Report:
        store = connection.open(location.bucket)
        try:
            return restore_case.run(
                location,
                dest,
                store,
                out,
                options,
                cancel=cancel,
                keep_actions=keep_actions,
            )
        finally:
            store.close()

    return _command(
        "restore", body, reporter=reporter, progress=progress, lock=lock, log_file=log_file
    )


def copy(
    src: str,
    dest: str,
    *,
    workers: int = 16,
    max_requests: int = MAX_REQUESTS,
    delete: bool = False,
    dry_run: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    filters: Sequence[tuple[bool, str]] | None = None,
    compare: str | None = None,
    fudge: float = 1200.0,
    force: bool = False,
    ignore_existing: bool = False,
    limit: int | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    source_endpoint_url: str | None = None,
    source_region: str | None = None,
    source_profile: str | None = None,
    allow_overlap: bool = False,
    retries: int = 4,
    timeout: float = 60.0,
    verify_ssl: bool = True,
    multipart_threshold: int = 8 * MIB,
    part_size: int = 8 * MIB,
    lock: str | None = None,
    allow_empty_source: bool = False,
    max_delete: int | str | None = None,
    log_file: str | None = None,
    progress: Callable[[Outcome], None] | None = None,
    reporter: Reporter | None = None,
    cancel: threading.Event | None = None,
    keep_actions: bool = True,
) -> Report:
    """Mirror ``s3://SRC[/PREFIX]`` into ``s3://DST[/PREFIX]``, server-side when it can.

    ``s3://b/dir`` copies ``dir/...`` as ``dir/...`` under the destination prefix;
    ``s3://b/dir/*`` copies its contents without ``dir/``. The ``source_*`` options
    reach a source on another endpoint or with other credentials; then the bytes stream
    through this machine in parts. Compare defaults to ``checksum`` (size and ETag).
    """
    from s3sync.usecases import copy as copy_case

    contents_only = src.endswith("/*")
    source_tree = copy_case.SourceTree.parse(
        parse_s3_url(src[:-2] if contents_only else src), contents_only=contents_only
    )
    location = parse_s3_url(dest)
    elsewhere = any(v is not None for v in (source_endpoint_url, source_region, source_profile))
    same_endpoint = source_endpoint_url is None or endpoint_shown(
        source_endpoint_url
    ) == endpoint_shown(endpoint_url or "")
    if same_endpoint and not allow_overlap:
        _refuse_overlap(source_tree.location, location, delete=delete)
    options = copy_case.CopyOptions(
        workers=workers,
        delete=delete,
        dry_run=dry_run,
        filters=tuple(filters) if filters is not None else filter_rules(include, exclude),
        allow_empty_source=allow_empty_source,
        max_delete=_delete_limit(max_delete),
        compare=_compare(compare or "checksum", force, ignore_existing),
        fudge=fudge,
        force=force,
        ignore_existing=ignore_existing,
        limit=limit,
        multipart_threshold=multipart_threshold,
        server_side=not elsewhere,
    )
    connection = Connection(
        endpoint_url=endpoint_url,
        region=region,
        profile=profile,
        retries=retries,
        timeout=timeout,
        verify_ssl=verify_ssl,
        workers=workers,
        max_requests=max_requests,
        multipart_threshold=multipart_threshold,
        part_size=part_size,
    )
    origin = connection._replace(
        endpoint_url=source_endpoint_url or endpoint_url,
        region=source_region or region,
        profile=source_profile or profile,
    )

    def body(out: Reporter) -> Report:
        store = connection.open(location.bucket)
        source = origin.open(source_tree.location.bucket)
        try:
            return copy_case.run(
                source_tree,
                location,
                source,
                store,
                out,
                options,
                cancel=cancel,
                keep_actions=keep_actions,
            )
        finally:
            store.close()
            source.close()

    return _command(
        "copy", body, reporter=reporter, progress=progress, lock=lock, log_file=log_file
    )


def _refuse_overlap(source: Location, dest: Location, *, delete: bool) -> None:
    """Raise ConfigError when a copy from *source* into *dest* (one bucket) would list
    its own copies as source (they nest again on every run), or, with *delete*, delete
    source objects as extras of the destination."""
    if source.bucket != dest.bucket:
        return
    inside = dest.prefix.startswith(source.prefix)
    if inside or (delete and source.prefix.startswith(dest.prefix)):
        where = "inside its source" if inside else "around its source, with --delete"
        raise ConfigError(
            f"s3://{dest.bucket}/{dest.prefix} is {where} s3://{source.bucket}/{source.prefix}:"
            " the copy would feed on itself; give --allow-overlap if that is meant"
        )


def pipe(
    dest: str,
    source: BinaryIO,
    *,
    content_type: str | None = None,
    metadata: Mapping[str, str] | None = None,
    workers: int = 4,
    part_size: int = 8 * MIB,
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    retries: int = 4,
    timeout: float = 60.0,
    verify_ssl: bool = True,
    cancel: threading.Event | None = None,
) -> Report:
    """Store everything read from the binary stream *source* as ``s3://BUCKET/KEY`` *dest*.

    Memory holds *workers* parts of *part_size* at most; on failure or interruption the
    multipart upload is aborted and nothing appears under the key.
    """
    from s3sync.usecases import stream

    bucket, key = parse_object_url(dest)
    extra = {
        "ContentType": content_type or "application/octet-stream",
        "Metadata": dict(metadata or {}),
    }
    connection = Connection(
        endpoint_url=endpoint_url,
        region=region,
        profile=profile,
        retries=retries,
        timeout=timeout,
        verify_ssl=verify_ssl,
        workers=workers,
        part_size=part_size,
    )
    store = connection.open(bucket)
    try:
        return stream.pipe(
            store,
            key,
            source,
            part_size=part_size,
            workers=workers,
            extra=extra,
            cancel=cancel or threading.Event(),
        )
    finally:
        store.close()


def cat(
    src: str,
    out: BinaryIO,
    *,
    workers: int = 4,
    part_size: int = 8 * MIB,
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    retries: int = 4,
    timeout: float = 60.0,
    verify_ssl: bool = True,
    cancel: threading.Event | None = None,
) -> Report:
    """Write the object ``s3://BUCKET/KEY`` *src* to the binary stream *out*, checked.

    Once *cancel* is set, the parts in flight finish and KeyboardInterrupt is raised.
    """
    from s3sync.usecases import stream

    bucket, key = parse_object_url(src)
    connection = Connection(
        endpoint_url=endpoint_url,
        region=region,
        profile=profile,
        retries=retries,
        timeout=timeout,
        verify_ssl=verify_ssl,
        workers=workers,
        part_size=part_size,
    )
    store = connection.open(bucket)
    try:
        return stream.cat(store, key, out, part_size=part_size, workers=workers, cancel=cancel)
    finally:
        store.close()


def _command(
    name: str,
    body: Callable[[Reporter], Report],
    *,
    reporter: Reporter | None,
    progress: Callable[[Outcome], None] | None,
    lock: str | None,
    log_file: str | None,
) -> Report:
    """Run *body* with the reporter (and log file) it tells, holding the lock if asked."""
    log = LogFileReporter(log_file) if log_file else None
    if reporter is None:
        reporter = CallbackReporter(progress) if progress else NullReporter()
    if log is not None:
        reporter = TeeReporter(reporter, log)
    try:
        with lock_file(lock):
            return body(reporter)
    except S3SyncError as exc:
        if log is not None:
            log.fail(f"s3sync {name}: {exc}")
        raise


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _compare(mode: str, force: bool, ignore_existing: bool) -> Compare:
    if force and ignore_existing:
        raise ConfigError("--force and --ignore-existing contradict each other: choose one")
    try:
        return Compare(mode)
    except ValueError:
        raise ConfigError(f"--compare must be mtime, checksum or size, not '{mode}'") from None


def _delete_limit(value: int | str | None) -> DeleteLimit | None:
    if value is None:
        return None
    try:
        count, percent = parse_max_delete(value)
    except ValueError as exc:
        raise ConfigError(f"--max-delete: {exc}") from None
    return DeleteLimit(count, percent)


@contextlib.contextmanager
def lock_file(path: str | None) -> Iterator[None]:
    """Hold the lockfile at *path* (if any) for the duration of the block."""
    if path is None:
        yield
    else:
        with lockfile.hold(path):
            yield


def _push(
    src: str,
    location: Location,
    options: PushOptions,
    reporter: Reporter,
    connection: Connection,
    *,
    cancel: threading.Event,
    lock_s3: str | None,
    keep_actions: bool,
) -> Report:
    from s3sync.usecases import push as push_case

    if options.index is not None:  # before anything is sent: a bad place is a usage error
        from s3sync.index import check_place

        check_place(options.index)
    store = connection.open(location.bucket)
    lease = None
    halt = threading.Event()
    try:
        if lock_s3 is not None:
            lease = Lease(store, lock_s3, where=f"s3://{location.bucket}/{lock_s3}")
            lease.acquire()
            lease.keep_renewed(halt.set)
        report = push_case.run(
            src,
            location,
            store,
            reporter,
            options,
            content_type=content_type.guess,
            cancel=cancel,
            halt=halt,
            keep_actions=keep_actions,
            cdn=connection.cloudfront() if options.cloudfront else None,
        )
        if lease is not None and lease.lost.is_set() and report.fatal is None:
            report.fatal = f"lost the lease {lease.key}: another run may have taken it"
        return report
    finally:
        if lease is not None:
            lease.release()
        store.close()
