"""Streams: ``pipe`` stores standard input as one object, ``cat`` writes an object out.

Both work in parts on a few threads with a fixed number of parts in memory, whatever
the stream's length. A pipe that fails or is interrupted aborts its multipart upload,
so no object appears under the key and no parts stay behind.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, BinaryIO

from s3sync.errors import ConfigError, Disposition, RemoteError, changed_underneath, classify
from s3sync.etags import MIB, EtagHasher, candidate_part_sizes, parts_of
from s3sync.model import Download, ObjectInfo, Outcome, Reason, Report, Stat, Upload

if TYPE_CHECKING:
    from s3sync.store.remote import Part, S3Store

MIN_PART = 5 * MIB
MAX_PARTS = 10_000


def part_size_for(number: int, base: int) -> int:
    """Return the size of part *number* (1-based) of a stream of unknown length.

    The size doubles every 1,000 parts, so 10,000 parts hold over 1,000 times 1,023
    base parts (8 TiB with 8 MiB parts): more than S3's 5 TiB object limit.
    """
    return base << ((number - 1) // 1000)


def _read(source: BinaryIO, size: int) -> bytearray:
    """Read *size* bytes, or fewer only at the end of the stream, into one buffer."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        count = source.readinto(view[got:])  # type: ignore[attr-defined]
        if not count:
            break
        got += count
    view.release()
    if got < size:
        del buffer[got:]  # shrinks in place: no second copy of the part
    return buffer


def _layouts(store: S3Store, key: str, info: ObjectInfo) -> tuple[list[int], bool]:
    """Return the part sizes to hash a multipart object *info* in, and whether its part
    size is known (recorded by s3sync, or told by a HEAD of part 1), so that a mismatch
    proves corruption. Guessed sizes may verify it; they never condemn it: 8 MiB and
    10 MiB parts both split 20 MiB in two."""
    if parts_of(info.etag) == 0:
        return [], False  # one MD5: no part size to know
    recorded = info.metadata.get("partsize", "")
    told = int(recorded) if recorded.isdigit() else store.first_part_size(key)
    sizes = candidate_part_sizes(info.size, parts_of(info.etag), [told] if told else [])
    return sizes, bool(told) and told in sizes


def _failed(report: Report, outcome: Outcome) -> Report:
    report.record(outcome)
    if outcome.fatal:
        report.fatal = outcome.error
    return report


def pipe(
    store: S3Store,
    key: str,
    source: BinaryIO,
    *,
    part_size: int,
    workers: int,
    extra: Mapping[str, object],
    cancel: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> Report:
    """Store everything read from *source* as *key*; return the report.

    A stream shorter than one part goes up in one request; a longer one as a multipart
    upload whose parts upload while the next is read, at most *workers* of them in
    memory. Unfinished uploads of the same key (a pipe killed outright) are aborted first.
    """
    if part_size < MIN_PART:
        raise ConfigError(f"--part-size must be at least 5MiB for a stream, not {part_size}")
    started = clock()
    report = Report(command="pipe")
    retried: list[BaseException] = []
    on_retry = retried.append
    total = 0
    try:
        store.abort_unfinished(key)  # older runs' leftovers: best effort, as in push
        chunk = _read(source, part_size_for(1, part_size))
        if len(chunk) < part_size:
            if cancel.is_set():
                report.interrupted = True
                return report
            etag = store.put_bytes(key, chunk, extra=extra, on_retry=on_retry) or ""
            total = len(chunk)
        else:
            etag, total = _pipe_parts(
                store,
                key,
                source,
                chunk,
                part_size=part_size,
                workers=workers,
                extra=extra,
                cancel=cancel,
                on_retry=on_retry,
            )
    except KeyboardInterrupt:
        report.interrupted = True
        return report
    except RemoteError as exc:
        fatal = classify(exc) is Disposition.FATAL
        action = Upload(key, "-", Stat(total, 0), Reason.NEW)
        return _failed(report, Outcome(action, str(exc), len(retried), fatal=fatal))
    except OSError as exc:
        action = Upload(key, "-", Stat(total, 0), Reason.NEW)
        return _failed(report, Outcome(action, f"cannot read the stream: {exc}", len(retried)))
    report.record(
        Outcome(Upload(key, "-", Stat(total, 0), Reason.NEW), None, len(retried), etag=etag)
    )
    report.duration = clock() - started
    return report


def _pipe_parts(
    store: S3Store,
    key: str,
    source: BinaryIO,
    first: bytearray,
    *,
    part_size: int,
    workers: int,
    extra: Mapping[str, object],
    cancel: threading.Event,
    on_retry: Callable[[BaseException], None],
) -> tuple[str, int]:
    upload_id = store.start_upload(key, extra, on_retry=on_retry)
    slots = threading.Semaphore(workers)
    futures: list[Future[Part]] = []
    total = 0
    pool = ThreadPoolExecutor(workers, thread_name_prefix="s3sync-pipe")
    try:
        chunk, number = first, 1
        while chunk:
            if cancel.is_set():
                raise KeyboardInterrupt
            if number > MAX_PARTS:
                raise OSError("the stream is longer than S3's 10,000 parts can hold")
            slots.acquire()  # at most *workers* parts in memory, read or in flight
            failed = next((f for f in futures if f.done() and f.exception()), None)
            if failed is not None:
                failed.result()
            future = pool.submit(
                store.upload_part, key, upload_id, number, chunk, on_retry=on_retry
            )
            future.add_done_callback(lambda _f: slots.release())
            futures.append(future)
            total += len(chunk)
            number += 1
            chunk = _read(source, part_size_for(number, part_size))
        if cancel.is_set():
            raise KeyboardInterrupt
        parts = [f.result() for f in futures]
        return store.finish_upload(key, upload_id, parts, on_retry=on_retry), total
    except BaseException:
        for f in futures:
            f.cancel()
        pool.shutdown(wait=True)
        store.abort(key, upload_id)
        raise
    finally:
        pool.shutdown(wait=True)


POLL = 0.2  # seconds between looks at the cancel flag while a part is awaited


def _result(future: Future[bytes], cancel: threading.Event | None) -> bytes:
    """Wait for *future*'s bytes; raise KeyboardInterrupt once *cancel* is set.

    The signal handler only sets *cancel*, and this raises between waits: a
    KeyboardInterrupt raised inside ``Future.result``'s wait can leave the future's
    lock released and come out as RuntimeError('cannot release un-acquired lock').
    """
    if cancel is None:
        return future.result()
    while not cancel.is_set():
        done, _ = wait((future,), timeout=POLL)
        if done:
            return future.result()
    raise KeyboardInterrupt


def cat(
    store: S3Store,
    key: str,
    out: BinaryIO,
    *,
    part_size: int,
    workers: int,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Report:
    """Write the object *key* to *out*, in order, from parallel ranged GETs; check it.

    At most *workers* parts are in memory. The bytes written are counted against the
    object's size and hashed against its ETag (single-part, or multipart when its part
    size is known); a mismatch is a failure. Once *cancel* is set (seen within
    ``POLL`` seconds), the parts not started are dropped, those in flight finish, and
    KeyboardInterrupt is raised.
    """
    started = clock()
    report = Report(command="cat")
    retried: list[BaseException] = []
    on_retry = retried.append
    action = Download(key, "-", Stat(0, 0), Reason.NEW)
    try:
        info = store.head(key, on_retry=on_retry)
        action = Download(key, "-", Stat(info.size, info.last_modified_ns, info.etag), Reason.NEW)
        sizes, known = _layouts(store, key, info)
        hasher = EtagHasher(sizes)
        ranges = [(o, min(o + part_size, info.size) - 1) for o in range(0, info.size, part_size)]
        written = 0
        with ThreadPoolExecutor(workers, thread_name_prefix="s3sync-cat") as pool:

            def read(first: int, last: int) -> Future[bytes]:
                # pinned to the version HEAD saw: a rewrite mid-read fails, never mixes
                return pool.submit(
                    store.get_range, key, first, last, on_retry=on_retry, if_match=info.etag
                )

            window: collections.deque[Future[bytes]] = collections.deque()
            pending = iter(ranges)
            for first, last in pending:
                window.append(read(first, last))
                if len(window) >= workers:
                    break
            while window:
                try:
                    data = _result(window[0], cancel)
                except KeyboardInterrupt:
                    for future in window:
                        future.cancel()
                    raise
                window.popleft()
                nxt = next(pending, None)
                if nxt is not None:
                    window.append(read(*nxt))
                hasher.update(data)
                out.write(data)
                written += len(data)
        out.flush()
    except RemoteError as exc:
        fatal = classify(exc) is Disposition.FATAL or exc.status == 404
        message = f"no object '{key}'" if exc.status == 404 else str(exc)
        if changed_underneath(exc):
            message = f"'{key}' changed while it was read: what was written is incomplete"
        return _failed(report, Outcome(action, message, len(retried), fatal=fatal))
    problem = None
    if written != info.size:
        problem = f"content check failed: {written} bytes written, the object has {info.size}"
    elif parts_of(info.etag) == 0 and hasher.single() != info.etag:
        problem = "content check failed: the MD5 of what was written is not the object's ETag"
    elif known and not any(hasher.multipart(s) == info.etag for s in sizes):
        problem = "content check failed: what was written does not match the object's ETag"
    report.record(Outcome(action, problem, len(retried)))
    report.duration = clock() - started
    return report
