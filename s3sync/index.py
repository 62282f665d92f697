"""The local index: what this tool believes is under the prefix, in SQLite.

Each row is a key (relative to the prefix) with the size and mtime of the file it was
uploaded from, the ETag S3 returned and the digest of the headers it was sent with;
for objects s3sync did not upload itself, the size and LastModified a listing gave.
A snapshot of every row in one blob lets a no-op run read them at a fifth of the cost;
triggers drop it whenever a row changes, so it never disagrees with the rows.
The index is bound to one endpoint, bucket and prefix. Reads are forgiving: a missing,
unreadable or corrupt file gives None (and a reason) so the caller lists the bucket
instead. Writes commit as each action completes, so a killed run keeps what it did; a
rebuilt index is written beside the old one and replaces it atomically.
"""

from __future__ import annotations

import contextlib
import itertools
import marshal
import os
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from s3sync.errors import ConfigError
from s3sync.model import Stat
from s3sync.paths import endpoint_shown

VERSION = "2"  # 2: the digest of each object's headers
PAGE = 1000
_ROWS = "SELECT key, size, mtime_ns, etag, headers FROM objects"
# the snapshot: one row, the objects' columns as marshalled lists; any change of a row drops it
_SNAPSHOT_SCHEMA = """
    CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), columns BLOB);
    CREATE TRIGGER IF NOT EXISTS snapshot_insert AFTER INSERT ON objects
        BEGIN DELETE FROM snapshot; END;
    CREATE TRIGGER IF NOT EXISTS snapshot_update AFTER UPDATE ON objects
        BEGIN DELETE FROM snapshot; END;
    CREATE TRIGGER IF NOT EXISTS snapshot_delete AFTER DELETE ON objects
        BEGIN DELETE FROM snapshot; END;
"""
_MARSHAL_VERSION = 4  # what every Python 3 reads


class Binding(NamedTuple):
    """The destination an index describes."""

    endpoint: str
    bucket: str
    prefix: str

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix} at {self.endpoint}"


class IndexUnusable(Exception):
    """The index file exists but cannot be trusted; the message says why."""


def check_place(path: str) -> None:
    """Raise ConfigError unless an index can be kept at *path*: a regular file (or
    nothing yet) that can be written, in a directory where a new index can be made
    beside it and renamed over it. Asked before a run sends anything."""
    if os.path.isdir(path):
        raise ConfigError(f"index '{path}' is a directory: give --index a file's path")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"index '{path}': no directory '{folder}' to keep it in")
    probe = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.probe")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"cannot write index '{path}': {exc.strerror} in '{folder}' (a new index is "
            "made beside the old one and renamed over it)"
        ) from None
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isfile(path):
        raise ConfigError(f"index '{path}' is not a regular file")
    try:
        os.close(os.open(path, os.O_RDWR | os.O_NOFOLLOW))
    except OSError as exc:
        raise ConfigError(f"cannot write index '{path}': {exc.strerror}") from None


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process
    return conn


class Index:
    """An open index; write from one thread (the reporting thread)."""

    def __init__(self, path: str, conn: sqlite3.Connection, *, fresh: bool) -> None:
        self.path = path
        self._conn = conn
        self.fresh = fresh
        self._final = path

    @classmethod
    def open(cls, path: str, binding: Binding) -> Index:
        """Open the index at *path* to be trusted instead of a listing.

        Raise FileNotFoundError when there is none, IndexUnusable when it is corrupt,
        and ConfigError when it belongs to another destination.
        """
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        try:
            conn = _connect(path)
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            conn.execute("SELECT key, size, mtime_ns, etag, headers FROM objects LIMIT 1")
            conn.execute("SELECT dev, ino, size, mtime_ns, part_size, etag FROM hashes LIMIT 1")
        except sqlite3.DatabaseError as exc:
            raise IndexUnusable(f"index '{path}' is unreadable ({exc})") from None
        if meta.get("version") != VERSION or not meta.get("complete"):
            conn.close()
            raise IndexUnusable(f"index '{path}' is incomplete or of another version")
        bound = Binding(meta.get("endpoint", ""), meta.get("bucket", ""), meta.get("prefix", ""))
        if bound._replace(endpoint=endpoint_shown(bound.endpoint)) != binding._replace(
            endpoint=endpoint_shown(binding.endpoint)
        ):
            conn.close()
            raise ConfigError(
                f"index '{path}' belongs to {bound.describe()}, not {binding.describe()}: "
                "give each destination its own --index file"
            )
        triggers = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'snapshot_%'"
        ).fetchone()[0]
        if triggers != 3:  # an index made before snapshots: add them (once)
            try:
                conn.executescript(_SNAPSHOT_SCHEMA + "DELETE FROM snapshot;")
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise IndexUnusable(f"index '{path}' cannot be updated ({exc})") from None
        return cls(path, conn, fresh=False)

    @classmethod
    def rebuild(cls, path: str, binding: Binding) -> Index:
        """Start a new index for *binding*, written beside *path* until ``commit``."""
        building = path + ".new"
        for stale in (building, building + "-wal", building + "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale)
        try:
            conn = _connect(building)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot write index '{path}': {exc}") from None
        conn.executescript(
            """
            CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE objects (key TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,
                                  etag TEXT, headers TEXT);
            CREATE TABLE hashes (dev INTEGER, ino INTEGER, size INTEGER, mtime_ns INTEGER,
                                 part_size INTEGER, etag TEXT,
                                 PRIMARY KEY (dev, ino, part_size));
            """
            + _SNAPSHOT_SCHEMA
        )
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [
                ("version", VERSION),
                ("endpoint", binding.endpoint),
                ("bucket", binding.bucket),
                ("prefix", binding.prefix),
            ],
        )
        _keep_hashes(conn, path)
        conn.execute("BEGIN")  # one transaction: nothing of it counts until commit
        index = cls(building, conn, fresh=True)
        index._final = path
        return index

    def get_meta(self, name: str) -> str | None:
        """Return the metadata value *name*, or None."""
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, name: str, value: str) -> None:
        """Store the metadata value *name*; one already so is not written again (a write
        costs a no-op run its WAL, a checkpoint and four fsyncs)."""
        if self.get_meta(name) != value:
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    def pages(self) -> Iterator[Iterable[tuple[str, Stat]]]:
        """Yield every row as ``(relpath, Stat)``, a page at a time, from its own connection:
        from the snapshot when there is one (all of it, one page made as it is read),
        else from the rows."""
        reader = sqlite3.connect(self.path, check_same_thread=False)
        new = tuple.__new__
        try:
            columns = _columns(reader.execute("SELECT columns FROM snapshot").fetchone())
            if columns is not None:
                keys, sizes, mtimes, etags, headers = columns
                # tuple.__new__ mapped over zip: no Python-level call per row
                stats = map(
                    new,
                    itertools.repeat(Stat),
                    zip(sizes, mtimes, etags, itertools.repeat(None), headers),
                )
                yield zip(keys, stats, strict=True)
                return
            cursor = reader.execute(_ROWS)
            while rows := cursor.fetchmany(PAGE):
                # tuple.__new__: Stat(...) would run the named tuple's Python-level __new__
                yield [(k, new(Stat, (size, t, etag, None, h))) for k, size, t, etag, h in rows]
        finally:
            reader.close()

    def save_snapshot(self) -> None:
        """Store the snapshot of the rows when a change (or none yet) dropped it; a run
        that changed nothing writes nothing."""
        if self._conn.execute("SELECT count(*) FROM snapshot").fetchone()[0]:
            return
        rows = self._conn.execute(_ROWS).fetchall()
        columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 5
        blob = marshal.dumps(columns, _MARSHAL_VERSION)
        self._conn.execute("INSERT INTO snapshot VALUES (1, ?)", (blob,))

    def cached_hashes(self, stat: Stat) -> dict[int, str]:
        """Return part size (0: whole file) -> ETag known for the unchanged local file *stat*."""
        if stat.inode is None:
            return {}
        rows = self._conn.execute(
            "SELECT part_size, etag FROM hashes WHERE dev = ? AND ino = ? AND size = ? "
            "AND mtime_ns = ?",
            (*stat.inode, stat.size, stat.mtime_ns),
        ).fetchall()
        return {int(part_size): str(etag) for part_size, etag in rows}

    def cache_hashes(self, stat: Stat, hashes: Iterable[tuple[int, str]]) -> None:
        """Remember the ETags computed for the local file *stat* (replacing older ones)."""
        if stat.inode is None:
            return
        dev, ino = stat.inode
        self._conn.execute(
            "DELETE FROM hashes WHERE dev = ? AND ino = ? AND (size != ? OR mtime_ns != ?)",
            (dev, ino, stat.size, stat.mtime_ns),
        )
        self._conn.executemany(
            "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?)",
            [(dev, ino, stat.size, stat.mtime_ns, part, etag) for part, etag in hashes],
        )

    def count(self) -> int:
        """Return the number of rows."""
        return int(self._conn.execute("SELECT count(*) FROM objects").fetchone()[0])

    def put(
        self, relpath: str, stat: Stat, etag: str | None = None, headers: str | None = None
    ) -> None:
        """Record that *relpath* holds an object made from a file with *stat*, sent with
        headers of digest *headers* (None: not known)."""
        self._conn.execute(
            "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)",
            (relpath, stat.size, stat.mtime_ns, etag, headers),
        )

    def remove(self, relpath: str) -> None:
        """Record that *relpath* was deleted."""
        self._conn.execute("DELETE FROM objects WHERE key = ?", (relpath,))

    def commit(self) -> None:
        """Make everything recorded durable; a rebuilt index replaces the old one."""
        if self.fresh:
            self.set_meta("complete", "1")
            self._conn.execute("COMMIT")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            for stale in (self._final + "-wal", self._final + "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(stale)
            os.replace(self.path, self._final)
            self._conn = _connect(self._final)
            self.path = self._final
            self.fresh = False

    def close(self) -> None:
        """Close without replacing anything (a rebuild not committed is dropped)."""
        self._conn.close()
        if self.path != self._final:
            for leftover in (self.path, self.path + "-wal", self.path + "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)


def _keep_hashes(conn: sqlite3.Connection, old: str) -> None:
    """Copy the file hashes an older index at *old* cached into the one being built:
    they describe local files (device, inode, size, mtime), whatever the bucket, and
    spare a rebuild reading every file written again since. A missing or unreadable
    old index has none to give."""
    if not os.path.isfile(old):
        return
    try:
        conn.execute("ATTACH DATABASE ? AS old", (old,))
    except sqlite3.Error:
        return
    try:
        conn.execute(
            "INSERT OR IGNORE INTO hashes "
            "SELECT dev, ino, size, mtime_ns, part_size, etag FROM old.hashes"
        )
    except sqlite3.Error:
        pass  # not an index of ours, or damaged: nothing to keep
    finally:
        conn.execute("DETACH DATABASE old")


def _columns(row: tuple[Any, ...] | None) -> list[list[Any]] | None:
    """Return the snapshot's five columns, or None when there is none or it is damaged
    (the rows are read instead)."""
    if row is None or not isinstance(row[0], bytes):
        return None
    try:
        columns = marshal.loads(row[0])
    except (EOFError, ValueError, TypeError):
        return None
    valid = (
        isinstance(columns, list)
        and len(columns) == 5
        and all(isinstance(column, list) for column in columns)
        and len({len(column) for column in columns}) == 1
    )
    return columns if valid else None
