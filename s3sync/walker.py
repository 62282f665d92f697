"""Scan the local tree with os.scandir, reporting what cannot be read as values."""

from __future__ import annotations

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
_NAME = operator.attrgetter("name")


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
    """Yield the values of ``scan``, a directory at a time (the loop is per file, and a
    no-op run with an index spends a third of its time here)."""
    top = os.stat(root)
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
        (root, "", frozenset({(top.st_dev, top.st_ino)}))
    ]
    is_dir, is_file, new = st.S_ISDIR, st.S_ISREG, tuple.__new__
    file_included = filters.file_included if filters else None
    while stack:
        directory, reldir, seen = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=_NAME)
        except OSError as exc:
            yield [_error(reldir or ".", f"cannot read directory: {exc.strerror or exc}")]
            continue
        values: list[LocalEntry | Problem] = []
        subdirs: list[tuple[str, str, frozenset[tuple[int, int]]]] = []
        above = f"{reldir}/" if reldir else ""
        for entry in entries:
            rel = above + entry.name
            if not rel.isascii():  # an undecodable name holds surrogates: not ASCII
                try:
                    rel.encode("utf-8")
                except UnicodeEncodeError:
                    shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                    values.append(_error(shown, "name is not valid UTF-8; skipped"))
                    continue
            try:
                link = entry.is_symlink()
                if link and not follow_symlinks:
                    if filters.file_included(rel):
                        values.append(_warn(rel, "symlink not followed (--no-follow-symlinks)"))
                    continue
                info = entry.stat(follow_symlinks=link)
            except FileNotFoundError:
                if filters.file_included(rel):
                    values.append(_warn(rel, "broken symlink; skipped"))
                continue
            except OSError as exc:
                if not filters.file_included(rel):
                    continue
                if link:
                    values.append(_warn(rel, f"cannot follow symlink: {exc.strerror}; skipped"))
                else:
                    values.append(_error(rel, f"cannot stat: {exc.strerror}"))
                continue
            mode = info.st_mode
            if is_dir(mode):
                if not filters.dir_included(rel):
                    continue
                ident = (info.st_dev, info.st_ino)
                if ident in seen:
                    values.append(_warn(rel, "symlink loop; skipped"))
                    continue
                subdirs.append((entry.path, rel, seen | {ident}))
            elif file_included is not None and not file_included(rel):
                continue
            elif is_file(mode):
                mark = read_mark(entry.path, info.st_mtime_ns, info.st_size) if marks else None
                inode = (info.st_dev, info.st_ino) if inodes else None
                # tuple.__new__: Stat(...) would run the named tuple's Python-level __new__
                stat = new(Stat, (info.st_size, info.st_mtime_ns, mark, inode, None))
                values.append((rel, stat))
            else:
                values.append(_warn(rel, "not a regular file (FIFO, socket or device); skipped"))
        stack.extend(reversed(subdirs))
        if values:
            yield values


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
