"""The push use case: make the objects under a prefix mirror a local directory."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, cast

from s3sync import engine, walker
from s3sync.diff import Matcher
from s3sync.errors import Disposition, RemoteError, S3SyncError, classify
from s3sync.filters import Filter
from s3sync.model import (
    Delete,
    Outcome,
    Problem,
    Report,
    Severity,
    Stat,
    Upload,
    mtime_to_text,
)
from s3sync.paths import Location, key_problem

if TYPE_CHECKING:
    from s3sync.progress import Reporter
    from s3sync.remote import ObjectStore


@dataclass(frozen=True, slots=True, kw_only=True)
class PushOptions:
    """How a push behaves; the CLI's flags with the same defaults."""

    workers: int = 16
    fudge: float = 1200.0
    delete: bool = True
    dry_run: bool = False
    filters: tuple[tuple[bool, str], ...] = ()
    follow_symlinks: bool = True


@dataclass(frozen=True, slots=True)
class _Retried:
    """A scan retried a request; the main thread counts it."""

    count: int


Page = list[tuple[str, Stat]]
T = TypeVar("T")
_WALK, _LIST = 0, 1


def _list(store: ObjectStore, prefix: str) -> Iterator[Page | _Retried]:
    retried: list[BaseException] = []
    for page in store.list_pages(prefix, on_retry=retried.append):
        if retried:
            yield _Retried(len(retried))
            retried.clear()
        yield page


def _perform_upload(
    upload: Upload,
    *,
    root: str,
    store: ObjectStore,
    content_type: Callable[[str], str],
) -> Outcome:
    retried: list[BaseException] = []
    path = os.path.join(root, upload.path)
    try:
        store.put_file(
            upload.key,
            path,
            upload.stat.size,
            content_type=content_type(path),
            metadata={"mtime": mtime_to_text(upload.stat.mtime_ns)},
            on_retry=retried.append,
        )
    except RemoteError as exc:
        fatal = classify(exc) is Disposition.FATAL
        return Outcome(upload, str(exc), len(retried), fatal=fatal)
    except OSError as exc:
        what = "vanished" if isinstance(exc, FileNotFoundError) else "cannot be read"
        return Outcome(upload, f"file {what}: {exc.strerror or exc}", len(retried))
    return Outcome(upload, None, len(retried))


def _perform_deletes(batch: list[Delete], *, store: ObjectStore) -> list[Outcome]:
    retried: list[BaseException] = []
    failures = dict(store.delete_many([d.key for d in batch], on_retry=retried.append))
    return [
        Outcome(d, failures.get(d.key), len(retried) if i == 0 else 0) for i, d in enumerate(batch)
    ]


def run(
    src: str,
    dest: Location,
    store: ObjectStore,
    reporter: Reporter,
    options: PushOptions,
    *,
    content_type: Callable[[str], str],
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    keep_actions: bool = True,
) -> Report:
    """Upload what changed under *src* to *dest*, then delete what is gone; return the report.

    Deletes run last, and only when both scans ended cleanly, every upload succeeded,
    and the run was not interrupted. A KeyboardInterrupt stops new work, lets in-flight
    uploads finish and is recorded as ``report.interrupted``. Without *keep_actions*
    the report counts outcomes without keeping them (flat memory on huge runs).
    """
    cancel = cancel or threading.Event()
    started = clock()
    report = Report(dry_run=options.dry_run, keep_actions=keep_actions)
    filters = Filter(options.filters)
    matcher = Matcher(dest.key, fudge=options.fudge)

    def local_events() -> Iterable[walker.LocalEntry | Problem]:
        return walker.scan(src, filters=filters, follow_symlinks=options.follow_symlinks)

    def remote_events() -> Iterable[Page | _Retried]:
        return _list(store, dest.prefix)

    def note(problem: Problem) -> None:
        report.note(problem)
        reporter.problem(problem)
        if problem.severity is Severity.WARNING:
            matcher.protect(problem.path)

    def planned(upload: Upload | None) -> Iterator[Upload]:
        if upload is not None:
            reporter.planned(upload)
            yield upload

    def handle(source: int, item: object) -> Iterator[Upload]:
        if isinstance(item, Problem):
            note(item)
        elif isinstance(item, _Retried):
            report.retries += item.count
        elif source == _WALK:
            relpath, stat = cast(walker.LocalEntry, item)
            problem = key_problem(dest.key(relpath))
            if problem is not None:
                note(Problem(relpath, problem, Severity.ERROR))
            else:
                yield from planned(matcher.local(relpath, stat))
        else:
            for key, listed in cast(Page, item):
                rel = dest.relpath(key)
                if rel is not None and filters.included(rel):
                    yield from planned(matcher.remote(rel, listed))

    def finish() -> Iterator[Upload]:
        for upload in matcher.finish_uploads():
            yield from planned(upload)

    def perform(action: Upload) -> Outcome | None:
        if cancel.is_set():
            return None
        if options.dry_run:
            return Outcome(action, dry_run=True)
        return _perform_upload(action, root=src, store=store, content_type=content_type)

    def record(outcome: Outcome | None) -> None:
        if outcome is None:
            return
        report.record(outcome)
        reporter.done(outcome)
        if outcome.fatal:
            report.fatal = outcome.error
            cancel.set()

    try:
        walker.check_root(src)
        _drive(
            engine.stream(
                [local_events, remote_events],
                handle,
                finish,
                perform,
                workers=options.workers,
                cancel=cancel,
            ),
            record,
            report,
            cancel,
        )
    except engine.SourceFailed as exc:
        error = exc.error
        report.fatal = str(error) if isinstance(error, S3SyncError) else f"scan failed: {error!r}"
    except S3SyncError as exc:
        report.fatal = str(exc)
    report.unchanged = matcher.unchanged

    if options.delete:
        deletes = matcher.finish_deletes()
        withheld = _withheld_reason(report)
        if withheld is not None:
            report.withheld_deletes = len(deletes) if report.fatal is None else 0
            report.withheld_reason = withheld if report.withheld_deletes else None
        elif deletes:
            for d in deletes:
                reporter.planned(d)
            _apply_deletes(deletes, store, options, record, report, cancel)
    report.duration = clock() - started
    reporter.finish(report, "push")
    return report


def _withheld_reason(report: Report) -> str | None:
    """Return why deletes must not run (scan errors count as failures), or None."""
    if report.interrupted:
        return "interrupted"
    if report.fatal is not None:
        return "fatal error"
    if report.failed:
        return "errors"
    return None


def _apply_deletes(
    deletes: list[Delete],
    store: ObjectStore,
    options: PushOptions,
    record: Callable[[Outcome | None], None],
    report: Report,
    cancel: threading.Event,
) -> None:
    batches = [deletes[i : i + 1000] for i in range(0, len(deletes), 1000)]

    def perform(batch: list[Delete]) -> list[Outcome]:
        if options.dry_run:
            return [Outcome(d, dry_run=True) for d in batch]
        return _perform_deletes(batch, store=store)

    def record_all(outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            record(outcome)

    _drive(
        engine.apply(batches, perform, workers=min(options.workers, 4), cancel=cancel),
        record_all,
        report,
        cancel,
    )


def _drive(
    results: Iterator[T], each: Callable[[T], object], report: Report, cancel: threading.Event
) -> None:
    """Pass every result to *each*; on Ctrl-C mark the run interrupted and drain in-flight work."""
    while True:
        try:
            for result in results:
                each(result)
            return
        except KeyboardInterrupt:
            report.interrupted = True
            cancel.set()
