"""Scan the local tree, reporting what cannot be read as values."""

from __future__ import annotations

import bisect
import operator
import os
import stat as st
from collections.abc import Callable, Iterator
from typing import Any

from s3sync.errors import SourceError
from s3sync.filters import Filter
from s3sync.model import Problem, Severity, Stat
from s3sync.paths import MARK_XATTR

LocalEntry = tuple[str, Stat]
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_FIRST = operator.itemgetter(0)


def read_mark(path: str, mtime_ns: int, size: int) -> str | None:
    """Return the ETag a restore recorded on *path*, if its mtime and size are still the
    ones it wrote (the size is the file's, which differs from a compressed object's)."""
    try:
        etag, recorded_mtime, recorded_size = (
            os.getxattr(path, MARK_XATTR, follow_symlinks=False).decode().split(" ")
        )
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    valid = etag and recorded_mtime == str(mtime_ns) and recorded_size == str(size)
    return etag if valid else None


def check_root(root: str) -> None:
    """Raise SourceError unless *root* is a directory this process can list."""
    try:
        if not os.path.isdir(root):
            what = "is not a directory" if os.path.exists(root) else "does not exist"
            raise SourceError(f"source '{root}' {what}")
        with os.scandir(root):
            pass
    except PermissionError:
        raise SourceError(f"source '{root}' cannot be read: permission denied") from None


def _warn(path: str, message: str) -> Problem:
    return Problem(path, message, Severity.WARNING)


def _error(path: str, message: str) -> Problem:
    return Problem(path, message, Severity.ERROR)


def scan(
    root: str,
    *,
    filters: Filter,
    follow_symlinks: bool = True,
    marks: bool = False,
    inodes: bool = False,
) -> Iterator[LocalEntry | Problem]:
    """Yield ``(relpath, Stat)`` for every included regular file under *root*, and problems.

    Excluded directories are not descended. Unreadable directories and undecodable
    names are ERROR problems; symlinks not followed, broken links, loops and special
    files (FIFOs, sockets, devices) are WARNING problems. Files are never opened. With
    *marks*, each Stat carries the ETag a restore recorded on the file (see read_mark);
    with *inodes*, its (device, inode), the key of the hash cache.
    """
    for values in _directories(
        root, filters=filters, follow_symlinks=follow_symlinks, marks=marks, inodes=inodes
    ):
        yield from values


def scan_batches(
    root: str, *, size: int = 256, **options: Any
) -> Iterator[list[LocalEntry | Problem]]:
    """Yield what ``scan(root, **options)`` yields in lists of whole directories, at
    least *size* values each but the last: the walker thread hands them to the engine a
    list at a time, not one handoff per file."""
    batch: list[LocalEntry | Problem] = []
    for values in _directories(root, **options):
        batch += values
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _directories(
    root: str,
    *,
    filters: Filter,
    follow_symlinks: bool = True,
    marks: bool = False,
    inodes: bool = False,
) -> Iterator[list[LocalEntry | Problem]]:
    """Yield the values of ``scan``, a run of one directory's files at a time (the loop
    is per file, and a no-op run with an index spends a third of its time here).

    Files come in the order S3 lists their keys, UTF-8 byte order, which for str is
    code point order: a subdirectory's files come where ``name + "/"`` sorts among its
    siblings (after ``a.html``, before ``a0``), so a listing and the walk can be matched
    with only the side that runs ahead held in memory.
    """
    top = os.stat(root)
    Frame = tuple[str, str, frozenset[tuple[int, int]]]
    # what is left to do, last first: runs of files to yield, directories to scan
    stack: list[list[tuple[str, LocalEntry | Problem]] | Frame] = [
        (root, "", frozenset({(top.st_dev, top.st_ino)}))
    ]
    is_dir, is_file, is_link, new = st.S_ISDIR, st.S_ISREG, st.S_ISLNK, tuple.__new__
    stat, file_included = os.stat, filters.file_included if filters else None
    while stack:
        work = stack.pop()
        if isinstance(work, list):
            yield [value for _, value in work]
            continue
        directory, reldir, seen = work
        fd = -1
        try:
            fd = os.open(directory, _DIR_FLAGS)
            names = os.listdir(fd)
        except OSError as exc:
            if fd >= 0:
                os.close(fd)
            yield [_error(reldir or ".", f"cannot read directory: {exc.strerror or exc}")]
            continue
        # (the name it sorts by, the value): a file's name, a problem's name
        values: list[tuple[str, LocalEntry | Problem]] = []
        subdirs: list[tuple[str, Frame]] = []  # (name + "/", the directory to scan)
        above = f"{reldir}/" if reldir else ""
        try:
            for name in names:
                rel = above + name
                if not rel.isascii():  # an undecodable name holds surrogates: not ASCII
                    try:
                        rel.encode("utf-8")
                    except UnicodeEncodeError:
                        shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                        values.append((name, _error(shown, "name is not valid UTF-8; skipped")))
                        continue
                link = False
                try:
                    # relative to the directory's descriptor: no path to resolve per file
                    info = stat(name, dir_fd=fd, follow_symlinks=False)
                    mode = info.st_mode
                    link = is_link(mode)
                    if link:
                        if not follow_symlinks:
                            if filters.file_included(rel):
                                problem = _warn(rel, "a symlink: not followed")
                                values.append((name, problem))
                            continue
                        info = stat(name, dir_fd=fd)
                        mode = info.st_mode
                except FileNotFoundError:
                    if link and filters.file_included(rel):
                        values.append((name, _warn(rel, "broken symlink; skipped")))
                    continue  # else gone since the listing: as if it never was
                except OSError as exc:
                    if not filters.file_included(rel):
                        continue
                    if link:
                        problem = _warn(rel, f"cannot follow symlink: {exc.strerror}; skipped")
                    else:
                        problem = _error(rel, f"cannot stat: {exc.strerror}")
                    values.append((name, problem))
                    continue
                if is_file(mode):
                    if file_included is not None and not file_included(rel):
                        continue
                    mark = None
                    if marks:
                        path = os.path.join(directory, name)
                        mark = read_mark(path, info.st_mtime_ns, info.st_size)
                    inode = (info.st_dev, info.st_ino) if inodes else None
                    # tuple.__new__: Stat(...) would run the named tuple's Python-level __new__
                    stat_ = new(Stat, (info.st_size, info.st_mtime_ns, mark, inode, None))
                    values.append((name, (rel, stat_)))
                elif is_dir(mode):
                    if not filters.dir_included(rel):
                        continue
                    ident = (info.st_dev, info.st_ino)
                    if ident in seen:
                        values.append((name, _warn(rel, "symlink loop; skipped")))
                        continue
                    frame = (os.path.join(directory, name), rel, seen | {ident})
                    subdirs.append((name + "/", frame))
                elif file_included is None or file_included(rel):
                    problem = _warn(rel, "not a regular file (FIFO, socket or device); skipped")
                    values.append((name, problem))
        finally:
            os.close(fd)
        values.sort(key=_FIRST)
        if not subdirs:
            if values:
                yield [value for _, value in values]
            continue
        subdirs.sort(key=_FIRST)
        todo: list[list[tuple[str, LocalEntry | Problem]] | Frame] = []
        start = 0
        for sorts_as, frame in subdirs:  # the files that sort before it, then its own
            end = bisect.bisect_left(values, sorts_as, lo=start, key=_FIRST)
            if end > start:
                todo.append(values[start:end])
            todo.append(frame)
            start = end
        if start < len(values):
            todo.append(values[start:])
        stack.extend(reversed(todo))


def entries(
    batch: list[LocalEntry | Problem], note: Callable[[Problem], None]
) -> Iterator[LocalEntry]:
    """Yield the files of a ``scan_batches`` list, telling *note* each problem in its
    place among them."""
    for value in batch:
        if isinstance(value, Problem):
            note(value)
        else:
            yield value
