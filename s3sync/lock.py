"""The lockfile: an exclusive, non-blocking flock, with who holds it written inside.

The kernel drops a flock when its process dies, so a lock left by a crashed run never
blocks the next one; the file itself stays.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from s3sync.errors import ConfigError, LockHeld


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace").split()
    fields = dict(part.split("=", 1) for part in text if "=" in part)
    if "pid" in fields and "since" in fields:
        return f"pid {fields['pid']} since {fields['since']}"
    return "another process"


@contextmanager
def hold(path: str, *, now: float | None = None) -> Iterator[None]:
    """Hold the lock at *path* for the duration of the block; raise LockHeld if taken."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot open lock file '{path}': {exc.strerror}") from None
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
