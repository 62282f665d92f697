"""Content checks of small ambiguous files, in batches on threads of their own.

A tree written just before a push has every file ambiguous (see ``diff.upload_reason``).
As an engine action, a check costs a Future, two thread hand-offs and an outcome:
more than reading a small file. Here a file whose object's ETag is a single-part MD5
is read on one of a few threads, a batch at a time, with no request; the main thread
takes the verdicts back and finishes each pair the way the change rule would have.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from s3sync.etags import parts_of
from s3sync.hashing import Verdict, file_etag, md5_shaped, same_md5
from s3sync.model import Settled, Upload

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

BATCH_FILES = 64
BATCH_BYTES = 4 * 1024 * 1024
SMALL = 1024 * 1024  # a larger file is checked as an action of its own


class Checked(NamedTuple):
    """The verdict on one upload's file, or why it could not be read."""

    upload: Upload
    verdict: Verdict | None
    error: OSError | None = None


def batchable(upload: Upload) -> bool:
    """Return whether the check of *upload* needs no request: a small file whose object
    has a single-part MD5 ETag (the content alone settles it)."""
    etag = upload.previous.etag if upload.previous is not None else None
    return (
        upload.stat.size <= SMALL
        and etag is not None
        and md5_shaped(etag)
        and parts_of(etag) == 0
        and upload.content is None
    )


class ContentChecks:
    """Batches of content checks, read on *threads* threads of their own; use from one
    thread (the main one) only.

    ``take`` adds an upload; ``ready`` yields the verdicts in so far without waiting,
    ``rest`` sends what is left and waits for every verdict (stopping early when
    *stopping* turns true). Memory holds the batches in flight only.
    """

    def __init__(self, root: str, *, threads: int, stopping: Callable[[], bool]) -> None:
        self._root = root
        self._threads = threads
        self._stopping = stopping
        self._pool: ThreadPoolExecutor | None = None
        self._done: queue.SimpleQueue[list[Checked]] = queue.SimpleQueue()
        self._batch: list[Upload] = []
        self._bytes = 0
        self._out = 0  # batches sent and not yet taken back
        self.files = 0  # uploads taken

    def take(self, upload: Upload) -> None:
        """Add *upload* (``batchable``) to the batch being filled; send it once full."""
        self._batch.append(upload)
        self._bytes += upload.stat.size
        self.files += 1
        if len(self._batch) >= BATCH_FILES or self._bytes >= BATCH_BYTES:
            self._send()

    def ready(self) -> Iterator[Checked]:
        """Yield the verdicts of the batches done so far, without waiting."""
        while self._out:
            try:
                batch = self._done.get_nowait()
            except queue.Empty:
                return
            self._out -= 1
            yield from batch

    def rest(self) -> Iterator[Checked]:
        """Send the batch being filled; yield every verdict still to come. Once the run
        is stopping, what was not sent is dropped and only batches in flight are
        waited for (each reads at most a few MiB)."""
        if self._stopping():
            self._batch, self._bytes = [], 0
        self._send()
        while self._out:
            try:
                batch = self._done.get(timeout=0.25)
            except queue.Empty:
                continue
            self._out -= 1
            yield from batch

    def close(self) -> None:
        """Stop the threads (after ``rest``, or when the run gives up)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _send(self) -> None:
        if not self._batch:
            return
        batch, self._batch, self._bytes = self._batch, [], 0
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="s3sync-check")
        self._out += 1
        self._pool.submit(self._check_all, batch)

    def _check_all(self, batch: list[Upload]) -> None:
        """Check each upload of *batch* (on a thread of the pool); hand the verdicts
        back in one piece, whatever happens."""
        found: list[Checked] = []
        try:
            for upload in batch:
                found.append(self._check(upload))
        finally:
            if len(found) < len(batch):  # an unexpected error: the rest go up unchecked
                found += [Checked(u, None) for u in batch[len(found) :]]
            self._done.put(found)

    def _check(self, upload: Upload) -> Checked:
        """Compare the file's MD5 with the object's single-part ETag: no request."""
        etag = upload.previous.etag if upload.previous is not None else None
        assert etag is not None
        try:
            ours, read = file_etag(os.path.join(self._root, upload.path), upload.stat.size)
        except OSError as exc:
            return Checked(upload, None, exc)
        same = same_md5(ours, etag)
        return Checked(upload, Verdict(same, Settled.CONTENT, ((0, ours),), read))
