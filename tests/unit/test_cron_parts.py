"""Delete guards, the lockfile, the index file and the lease, each on its own."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from s3sync.config import parse_max_delete
from s3sync.diff import DeleteLimit, delete_guard
from s3sync.errors import ConfigError, LockHeld
from s3sync.index import Binding, Index, IndexUnusable
from s3sync.lease import Lease
from s3sync.lock import hold
from s3sync.model import Stat

BINDING = Binding("http://127.0.0.1:9", "bucket", "site/")


@pytest.mark.parametrize(
    ("kwargs", "guard"),
    [
        ({"deletes": 0, "local_files": 0, "remote_objects": 5}, None),
        ({"deletes": 5, "local_files": 0, "remote_objects": 5}, "source directory is empty"),
        (
            {"deletes": 5, "local_files": 0, "remote_objects": 5, "mount_point": True},
            "empty mount point",
        ),
        ({"deletes": 5, "local_files": 0, "remote_objects": 5, "source_missing": True}, "missing"),
        ({"deletes": 5, "local_files": 0, "remote_objects": 5, "allow_empty_source": True}, None),
        (
            {"deletes": 1, "local_files": 9, "remote_objects": 10, "device_changed": True},
            "another device",
        ),
        (
            {"deletes": 3, "local_files": 9, "remote_objects": 10, "limit": DeleteLimit(2)},
            "3 deletes exceed --max-delete 2",
        ),
        ({"deletes": 2, "local_files": 9, "remote_objects": 10, "limit": DeleteLimit(2)}, None),
        (
            {
                "deletes": 2,
                "local_files": 9,
                "remote_objects": 10,
                "limit": DeleteLimit(20, percent=True),
            },
            None,
        ),
        (
            {
                "deletes": 3,
                "local_files": 9,
                "remote_objects": 10,
                "limit": DeleteLimit(20, percent=True),
            },
            "exceed --max-delete 20%",
        ),
    ],
)
def test_delete_guard(kwargs: dict[str, object], guard: str | None) -> None:
    found = delete_guard(**kwargs)  # type: ignore[arg-type]
    assert (found is None) if guard is None else (guard in (found or ""))


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("10", (10, False)), ("25%", (25, True)), (7, (7, False)), (" 0 ", (0, False))],
)
def test_parse_max_delete(text: str | int, parsed: tuple[int, bool]) -> None:
    assert parse_max_delete(text) == parsed


@pytest.mark.parametrize("text", ["ten", "-1", "101%", "5.5", ""])
def test_parse_max_delete_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_max_delete(text)


def test_lock_is_exclusive_and_says_who_holds_it(tmp_path: Path) -> None:
    path = str(tmp_path / "lock")
    with (
        hold(path, now=0),
        pytest.raises(LockHeld, match=r"locked by pid \d+ since 1970-01-01T"),
        hold(path),
    ):
        pass
    with hold(path):  # released
        pass


def test_lock_never_follows_a_symlink_or_truncates_its_target(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("a year of notes")
    (tmp_path / "lock").symlink_to(precious)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")

    for name in ("lock", "dangling"):
        with pytest.raises(ConfigError, match="is a symlink"), hold(str(tmp_path / name)):
            pass
    assert precious.read_text() == "a year of notes"
    assert not (tmp_path / "nowhere").exists()


def test_lock_refuses_what_is_no_regular_file_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    for path, why in (
        (tmp_path / "fifo", "not a regular file"),
        (Path("/dev/null"), "not a regular file"),
        (tmp_path / "dir", "Is a directory"),
    ):
        with pytest.raises(ConfigError, match=why), hold(str(path)):
            pass


def test_lock_never_truncates_a_file_that_is_not_a_lock_file(tmp_path: Path) -> None:
    someones = tmp_path / "notes.txt"
    someones.write_text("pid=1 since=yesterday\nand a line of mine\n")
    with pytest.raises(ConfigError, match="not an s3sync lock file"), hold(str(someones)):
        pass
    assert someones.read_text() == "pid=1 since=yesterday\nand a line of mine\n"
    stale = tmp_path / "stale.lock"  # left by a killed run: taken, as always
    stale.write_text("pid=123 since=2026-01-01T00:00:00+0000\n")
    with hold(str(stale)):
        assert stale.read_text().startswith(f"pid={os.getpid()} ")


def test_index_round_trip_and_binding(tmp_path: Path) -> None:
    path = str(tmp_path / "i.db")
    with pytest.raises(FileNotFoundError):
        Index.open(path, BINDING)
    fresh = Index.rebuild(path, BINDING)
    fresh.put("a.txt", Stat(1, 10), '"etag"')
    fresh.put("b/c.txt", Stat(2, 20))
    fresh.remove("b/c.txt")
    fresh.commit()
    fresh.put("d.txt", Stat(3, 30))  # after commit: written in place at once
    fresh.close()

    index = Index.open(path, BINDING)
    assert [row for page in index.pages() for row in page] == [
        ("a.txt", Stat(1, 10, '"etag"')),
        ("d.txt", Stat(3, 30)),
    ]
    index.close()
    with pytest.raises(ConfigError, match="belongs to s3://bucket/site/"):
        Index.open(path, Binding("http://127.0.0.1:9", "bucket", "other/"))


def test_uncommitted_rebuild_leaves_the_old_index(tmp_path: Path) -> None:
    path = str(tmp_path / "i.db")
    first = Index.rebuild(path, BINDING)
    first.put("old.txt", Stat(1, 1))
    first.commit()
    first.close()
    second = Index.rebuild(path, BINDING)
    second.put("new.txt", Stat(1, 1))
    second.close()  # a run that never finished its listing

    index = Index.open(path, BINDING)
    assert [rel for page in index.pages() for rel, _ in page] == ["old.txt"]
    index.close()


def test_corrupt_or_incomplete_index_is_unusable(tmp_path: Path) -> None:
    garbage = tmp_path / "g.db"
    garbage.write_bytes(b"\0garbage" * 512)
    with pytest.raises(IndexUnusable):
        Index.open(str(garbage), BINDING)
    other = tmp_path / "o.db"
    sqlite3.connect(other).execute("CREATE TABLE x (y)")
    with pytest.raises(IndexUnusable):
        Index.open(str(other), BINDING)


class LeaseStore:
    """A dict of key -> (body, etag) with S3's conditional-write semantics."""

    endpoint = "memory"

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.writes = 0

    def put_bytes(
        self, key: str, body: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str | None:
        current = self.objects.get(key)
        if if_none_match and current is not None:
            return None
        if if_match is not None and (current is None or current[1] != if_match):
            return None
        self.writes += 1
        etag = f'"{self.writes}"'
        self.objects[key] = (body, etag)
        return etag

    def get_bytes(self, key: str) -> tuple[bytes, str] | None:
        return self.objects.get(key)

    def delete_if_match(self, key: str, etag: str) -> bool:
        if key in self.objects and self.objects[key][1] == etag:
            del self.objects[key]
            return True
        return False


def test_lease_acquire_refuse_take_over_and_release() -> None:
    store = LeaseStore()
    clock = [1000.0]
    mine = Lease(store, "l", where="s3://b/l", ttl=60, now=lambda: clock[0])  # type: ignore[arg-type]
    theirs = Lease(store, "l", where="s3://b/l", ttl=60, now=lambda: clock[0])  # type: ignore[arg-type]

    mine.acquire()
    with pytest.raises(LockHeld, match="s3://b/l is locked by host"):
        theirs.acquire()
    clock[0] += 61  # mine expired without renewal
    theirs.acquire()
    assert json.loads(store.objects["l"][0])["expires"] == clock[0] + 60
    assert mine.renew() is False  # the lease is no longer mine
    theirs.release()
    assert store.objects == {}
