"""Writes into a local destination tree without ever following a symlink below its root.

Every path is reached from a descriptor of the root, one directory at a time, with
O_NOFOLLOW: a symlink (or a file) where a directory should be is refused, so nothing can
be written outside the root. Files are written to a temporary name beside the target,
given their mtime and mark, and renamed into place: an interrupted write never leaves a
partial file under a real name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable

from s3sync.errors import SourceError
from s3sync.paths import MARK_XATTR

_TEMP = re.compile(r"\A\.s3sync-[0-9a-f]{16}\.tmp\Z")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def is_temp_name(relpath: str) -> bool:
    """Return True for the temporary files this module writes (left by a killed run)."""
    return bool(_TEMP.match(relpath.rpartition("/")[2]))


class PathRefused(OSError):
    """A path would cross a symlink or a file where a directory must be."""


class LocalTree:
    """A destination directory; use from any thread (every call opens its own fds)."""

    def __init__(self, root: str) -> None:
        try:
            os.makedirs(root, exist_ok=True)
            self._root = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise SourceError(f"destination '{root}' cannot be used: {exc.strerror}") from None
        self.root = root

    def close(self) -> None:
        """Release the root descriptor."""
        os.close(self._root)

    def _open_dir(self, parts: list[str], *, create: bool) -> int:
        fd = os.dup(self._root)
        try:
            for part in parts:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o777, dir_fd=fd)
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise PathRefused(
                            exc.errno, f"'{part}' is a symlink or a file, not a directory"
                        ) from None
                    raise
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def check_writable(self) -> None:
        """Raise SourceError unless a file can be created in the root."""
        name = f".s3sync-{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=self._root)
            os.close(fd)
            os.unlink(name, dir_fd=self._root)
        except OSError as exc:
            raise SourceError(
                f"destination '{self.root}' is not writable: {exc.strerror}"
            ) from None

    def write(
        self, relpath: str, chunks: Iterable[bytes], *, mtime_ns: int, etag: str | None
    ) -> None:
        """Write *chunks* as the file *relpath*, atomically, with *mtime_ns*, marked *etag*."""
        *parents, name = relpath.split("/")
        dirfd = self._open_dir(parents, create=True)
        temp = f".s3sync-{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(
                temp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o666,
                dir_fd=dirfd,
            )
            try:
                size = 0
                with os.fdopen(fd, "wb", closefd=False) as out:
                    for chunk in chunks:
                        size += out.write(chunk)
                os.utime(fd, ns=(mtime_ns, mtime_ns))
                if etag is not None:
                    _set_mark(fd, etag, mtime_ns, size)
            finally:
                os.close(fd)
            os.rename(temp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=dirfd)
            raise
        finally:
            os.close(dirfd)

    def mark(self, relpath: str, etag: str, mtime_ns: int) -> None:
        """Record on an existing file that it holds the object *etag* (best effort)."""
        *parents, name = relpath.split("/")
        dirfd = self._open_dir(parents, create=False)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
            try:
                _set_mark(fd, etag, mtime_ns, os.fstat(fd).st_size)
            finally:
                os.close(fd)
        finally:
            os.close(dirfd)

    def remove(self, relpath: str) -> None:
        """Remove the file *relpath* (a symlink itself, never its target)."""
        *parents, name = relpath.split("/")
        dirfd = self._open_dir(parents, create=False)
        try:
            os.unlink(name, dir_fd=dirfd)
        finally:
            os.close(dirfd)

    def prune(self, relpaths: Iterable[str]) -> None:
        """Remove the directories above *relpaths* that are now empty, deepest first."""
        dirs = {"/".join(p.split("/")[:i]) for p in relpaths for i in range(1, p.count("/") + 1)}
        for directory in sorted(dirs, key=lambda d: -d.count("/")):
            *parents, name = directory.split("/")
            with contextlib.suppress(OSError):
                dirfd = self._open_dir(parents, create=False)
                try:
                    os.rmdir(name, dir_fd=dirfd)
                finally:
                    os.close(dirfd)

    def folding(self) -> Callable[[str], str] | None:
        """Return how this file system folds names (case, Unicode form), or None if exact."""
        probe = f".s3sync-{secrets.token_hex(8)}-aé"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=self._root)
            os.close(fd)
            try:
                case = _exists(self._root, probe.replace("-aé", "-Aé"))
                form = _exists(self._root, unicodedata.normalize("NFD", probe))
            finally:
                os.unlink(probe, dir_fd=self._root)
        except OSError:
            return None
        if not (case or form):
            return None

        def fold(name: str) -> str:
            if form:
                name = unicodedata.normalize("NFC", name)
            return name.casefold() if case else name

        return fold


def _exists(dirfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except OSError:
        return False
    return True


def _set_mark(fd: int, etag: str, mtime_ns: int, size: int) -> None:
    with contextlib.suppress(OSError):  # no xattrs here: later restores verify by HEAD
        os.setxattr(fd, MARK_XATTR, f"{etag} {mtime_ns} {size}".encode())
