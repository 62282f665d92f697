"""Read a local file as one consistent version, or learn that it changed while being read.

An upload must never store a mix of two versions of a file. A Snapshot remembers the
file's status when it was opened; every read that comes up short, and every check
after the bytes are read, compares the status again and raises SourceChanged when the
file was written, truncated or replaced in between.

File times are coarse (a jiffy on ext4, a second or two on older file systems), so a
write in the same tick as the last one leaves the status as it was. A file changed
that recently when it was opened is "racy": its reads are hashed, and the check reads
them again and compares, as git does for racy index entries.

A write(2) sets the times when it starts, then copies its pages while it holds the
file's lock; readers on ext4, tmpfs and btrfs do not take that lock, so a writer
stopped halfway (preempted, throttled) shows them a mix that stays put for both
reads. Before reading a racy file again, the check asks for the first hole, which
takes the lock on those file systems and so waits out a write in flight; XFS
readers take the lock for every read and never see a mix.
"""

from __future__ import annotations

import contextlib
import os
import stat as st
import time
from types import TracebackType

from s3sync.etags import md5
from s3sync.model import Stat


class SourceChanged(Exception):
    """The file changed while it was being read: what was read is not one version."""


# a change this close to the open may not have moved the file's times (FAT: 2 s ticks)
RACY_NS = 3 * 10**9


def _signature(status: os.stat_result) -> tuple[int, int, int, int]:
    # ctime moves on every write and on chmod, even when the writer restores the mtime
    return (status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino)


def _wait_for_a_write_in_flight(fd: int) -> None:
    # SEEK_HOLE takes the inode lock shared (ext4, tmpfs, btrfs); a file system
    # without holes answers "at the end" at once, and an empty file says ENXIO
    with contextlib.suppress(OSError):
        os.lseek(fd, 0, os.SEEK_HOLE)


class Snapshot:
    """An open regular file and the status it had when opened.

    ``stat`` is what the file was when opened: its bytes, when ``verify`` passes after
    they were read, are exactly that version's. Opening never blocks (a FIFO put in
    the file's place is refused, not waited on).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            status = os.fstat(self._fd)
            if not st.S_ISREG(status.st_mode):
                kind = "a directory" if st.S_ISDIR(status.st_mode) else "not a regular file"
                raise IsADirectoryError(0, f"is now {kind}", path)
        except BaseException:
            os.close(self._fd)
            raise
        self._signature = _signature(status)
        self.stat = Stat(status.st_size, status.st_mtime_ns)
        # a write after a utime moves the mtime off the old value: only the mtime races
        self.racy = time.time_ns() - status.st_mtime_ns < RACY_NS
        self._read: list[tuple[int, int, bytes]] = []  # (offset, length, MD5), when racy

    def read(self, offset: int, length: int) -> bytes:
        """Return *length* bytes from *offset*; SourceChanged if the file is shorter now."""
        data = self._pread(offset, length)
        if self.racy:
            self._read.append((offset, length, md5(data).digest()))
        return data

    def _pread(self, offset: int, length: int) -> bytes:
        chunks: list[bytes] = []
        got = 0
        while got < length:
            chunk = os.pread(self._fd, length - got, offset + got)
            if not chunk:
                raise SourceChanged(f"'{self.path}' shrank while being read")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks) if len(chunks) != 1 else chunks[0]

    def read_all(self) -> bytes:
        """Return the whole file as it was when opened; SourceChanged if it changed."""
        data = self.read(0, self.stat.size)
        self.verify()
        return data

    def verify(self) -> None:
        """Raise SourceChanged unless the file is still the version that was opened."""
        if self._read:
            _wait_for_a_write_in_flight(self._fd)
        now = _signature(os.fstat(self._fd))
        if now != self._signature or os.pread(self._fd, 1, self.stat.size):
            raise SourceChanged(f"'{self.path}' changed while being read")
        for offset, length, digest in self._read:  # racy: the times cannot be trusted
            again = md5(self._pread(offset, length)).digest()
            if again != digest:
                raise SourceChanged(f"'{self.path}' changed while being read")
        try:
            replaced = os.stat(self.path).st_ino != self._signature[3]
        except OSError:
            replaced = True
        if replaced:
            raise SourceChanged(f"'{self.path}' was replaced while being read")

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
