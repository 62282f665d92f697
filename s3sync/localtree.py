"""Writes into a local destination tree without ever following a symlink below its root.

Every path is reached from a descriptor of the root, one directory at a time, with
O_NOFOLLOW: a symlink (or a file) where a directory should be is refused, so nothing can
be written outside the root. Files are written to a temporary name beside the target,
given their mtime and mark, and renamed into place: an interrupted write never leaves a
partial file under a real name.

Writes keep the descriptors of the directories they wrote into most recently, so a
file costs its own system calls, not one open per directory above it. Another writer
(awscrt) is handed a temporary file this process created (``O_CREAT|O_EXCL|O_NOFOLLOW``,
a random name) by the /proc/self/fd path of its descriptor, which reaches that very
file, never a name someone could have replaced with a symlink.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable, Iterable

from s3sync.errors import SourceError
from s3sync.paths import MARK_XATTR

# ".s3sync-p<pid>-<random><serial>.tmp"; without "p<pid>-" as older versions wrote them
_TEMP = re.compile(r"\A\.s3sync-(?:p([0-9]+)-)?[0-9a-f]{16}\.tmp\Z")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KEPT_DIRS = 64  # directory descriptors kept open for writes


def is_temp_name(relpath: str) -> bool:
    """Return True for the temporary files this module writes (never a real name)."""
    return bool(_TEMP.match(relpath.rpartition("/")[2]))


def abandoned(relpath: str) -> bool:
    """Return True when the temporary file *relpath* was left by a run that is gone: its
    process no longer lives, or an older version (no pid in the name) wrote it. A file of
    this process, or of another restore still running, is being written: never so."""
    found = _TEMP.match(relpath.rpartition("/")[2])
    if found is None:
        return False
    if found.group(1) is None:
        return True
    pid = int(found.group(1))
    if pid == _PID:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


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
        self._dirs = _KeptDirs(lambda parents: self._open_dir(parents, create=True))
        self._by_fd = os.path.isdir(f"/proc/self/fd/{self._root}")

    def close(self) -> None:
        """Release the root descriptor and the kept ones."""
        self._dirs.close()
        os.close(self._root)

    def begin(self, relpath: str) -> Pending | None:
        """Create the directories above *relpath* and return a Pending temporary file for
        another writer to fill by path; None where no such path reaches a descriptor
        (no /proc). Raise what creating the directories raised."""
        if not self._by_fd:
            return None
        *parents, name = relpath.split("/")
        return Pending(self._dirs, self._dirs.acquire(parents), name)

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
        try:
            name, fd = _create_temp(self._root)
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
        kept, temp, fd = self._create(parents)
        try:
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
            os.rename(temp, name, src_dir_fd=kept.fd, dst_dir_fd=kept.fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=kept.fd)
            raise
        finally:
            self._dirs.release(kept)

    def _create(self, parents: list[str]) -> tuple[_Dir, str, int]:
        """Create a temporary file in the directory *parents* names; return the
        directory (to release), the file's name and its descriptor. A kept directory
        removed meanwhile is opened anew, and created again."""
        for fresh in (False, True):
            kept = self._dirs.acquire(parents, fresh=fresh)
            try:
                return kept, *_create_temp(kept.fd)
            except FileNotFoundError:
                self._dirs.release(kept)
                if fresh:
                    raise
            except BaseException:
                self._dirs.release(kept)
                raise
        raise AssertionError("unreachable")

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


class _Dir:
    """A kept directory descriptor, how many are using it, and whether it was let go."""

    __slots__ = ("dropped", "fd", "users")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.users = 0
        self.dropped = False


class _KeptDirs:
    """The descriptors of the directories written into most recently, shared by
    reference count: one evicted while in use is closed by its last user."""

    def __init__(self, open_dir: Callable[[list[str]], int]) -> None:
        self._open_dir = open_dir
        self._kept: collections.OrderedDict[str, _Dir] = collections.OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, parents: list[str], *, fresh: bool = False) -> _Dir:
        """Return the directory *parents* names, created if missing and opened unless
        kept (*fresh*: opened anew); ``release`` it after use."""
        key = "/".join(parents)
        with self._lock:
            found = self._kept.get(key)
            if found is not None and fresh:
                self._drop(key)
            elif found is not None:
                self._kept.move_to_end(key)
                found.users += 1
                return found
        opened = _Dir(self._open_dir(parents))
        with self._lock:
            if key in self._kept:  # another thread opened it meanwhile
                self._drop(key)
            self._kept[key] = opened
            opened.users += 1
            while len(self._kept) > _KEPT_DIRS:
                self._drop(next(iter(self._kept)))
        return opened

    def release(self, kept: _Dir) -> None:
        with self._lock:
            kept.users -= 1
            if kept.dropped and not kept.users:
                os.close(kept.fd)

    def close(self) -> None:
        with self._lock:
            for key in list(self._kept):
                self._drop(key)

    def _drop(self, key: str) -> None:
        kept = self._kept.pop(key)
        kept.dropped = True
        if not kept.users:
            os.close(kept.fd)


class Pending:
    """A temporary file created beside *name* in a kept directory, that someone else
    writes by ``path`` (its descriptor's /proc path); ``commit`` puts it in place,
    ``abandon`` removes it. Call exactly one of them, once: either lets the directory
    and the file's descriptor go."""

    def __init__(self, dirs: _KeptDirs, kept: _Dir, name: str) -> None:
        self._dirs = dirs
        self._kept = kept
        self.name = name
        try:
            self.temp, self._fd = _create_temp(kept.fd)
        except BaseException:
            dirs.release(kept)
            raise
        self.path = f"/proc/self/fd/{self._fd}"

    def commit(self, *, mtime_ns: int, etag: str | None, size: int) -> None:
        """Give the file *mtime_ns* and the mark of *etag* and *size*, and rename it into
        place; on an error it is removed, and the error raised."""
        dirfd = self._kept.fd
        try:
            os.utime(self._fd, ns=(mtime_ns, mtime_ns))
            if etag is not None:
                _set_mark(self._fd, etag, mtime_ns, size)
            if not self._still_ours():
                raise PathRefused(errno.EEXIST, f"'{self.temp}' was replaced while written")
            os.rename(self.temp, self.name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
        except BaseException:
            self.abandon()
            raise
        os.close(self._fd)
        self._dirs.release(self._kept)

    def _still_ours(self) -> bool:
        """Return whether the temporary name still names the file this process created."""
        try:
            named = os.stat(self.temp, dir_fd=self._kept.fd, follow_symlinks=False)
        except OSError:
            return False
        held = os.fstat(self._fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def abandon(self) -> None:
        """Remove the temporary file, unless its name now names another."""
        try:
            if self._still_ours():
                with contextlib.suppress(OSError):
                    os.unlink(self.temp, dir_fd=self._kept.fd)
            os.close(self._fd)
        finally:
            self._dirs.release(self._kept)


def _create_temp(dirfd: int) -> tuple[str, int]:
    """Create a new temporary file in *dirfd*; return its name and descriptor. A name
    taken (by a file someone planted there: names are random) is passed over."""
    for _ in range(_TEMP_TRIES - 1):
        name = _temp_name()
        with contextlib.suppress(FileExistsError):
            return name, _create(name, dirfd)
    name = _temp_name()
    return name, _create(name, dirfd)


_TEMP_TRIES = 8


def _create(name: str, dirfd: int) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(name, flags, 0o666, dir_fd=dirfd)


_PID = os.getpid()


def _reseed() -> None:  # a forked child must not name files as its parent's
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_reseed)


def _temp_name() -> str:
    """Return a temporary name no other file has and no one can foresee: the pid (so a
    later run can tell a live writer's file from a dead one's), then 64 random bits."""
    return f".s3sync-p{_PID}-{secrets.token_hex(8)}.tmp"


def _exists(dirfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except OSError:
        return False
    return True


def _set_mark(file: int | str, etag: str, mtime_ns: int, size: int) -> None:
    """Mark the *file* (a descriptor, or a path) as holding *etag* at *mtime_ns*, *size*."""
    with contextlib.suppress(OSError):  # no xattrs here: later restores verify by HEAD
        os.setxattr(file, MARK_XATTR, f"{etag} {mtime_ns} {size}".encode())
