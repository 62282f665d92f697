"""The lockfile: an exclusive, non-blocking flock, with who holds it written inside.

The kernel drops a flock when its process dies, so a lock left by a crashed run never
blocks the next one; the file itself stays.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager

from s3sync.errors import ConfigError, LockHeld

_OURS = re.compile(rb"(pid=[0-9]+ since=\S+\n)?")


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace").split()
    fields = dict(part.split("=", 1) for part in text if "=" in part)
    if "pid" in fields and "since" in fields:
        return f"pid {fields['pid']} since {fields['since']}"
    return "another process"


def _open(path: str) -> int:
    """Open the lock file at *path*, made if missing; raise ConfigError for anything
    that is not a regular file of ours: a symlink is never followed (its target could
    be any file), a FIFO or a device is no lock, and a file holding anything but a
    lock record (or nothing) is someone's file, never truncated."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"lock file '{path}' is a symlink: give the path itself") from None
        raise ConfigError(f"cannot open lock file '{path}': {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"lock file '{path}' is not a regular file")
        if not _OURS.fullmatch(os.pread(fd, 4097, 0)):
            raise ConfigError(
                f"'{path}' is not an s3sync lock file (it holds something else): "
                "give --lock a path of its own"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def hold(path: str, *, now: float | None = None) -> Iterator[None]:
    """Hold the lock at *path* for the duration of the block; raise LockHeld if taken,
    ConfigError if *path* is no place for a lock file (see ``_open``)."""
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(f"'{path}' is locked by {_holder(fd)}") from None
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid={os.getpid()} since={stamp}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
