"""Restore's pure parts and the symlink-proof local tree, on real temporary directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from s3sync.errors import SourceError
from s3sync.filters import Filter
from s3sync.localtree import LocalTree, PathRefused, is_temp_name
from s3sync.model import ObjectInfo, Problem, mtime_from_text, mtime_to_text
from s3sync.paths import unsafe_relpath
from s3sync.usecases.restore import file_mtime
from s3sync.walker import scan


@pytest.mark.parametrize(
    ("relpath", "why"),
    [
        ("a/b.txt", None),
        ("café/ファイル name+%#?.txt", None),
        ("/etc/passwd", "absolute"),
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("a/./b", "'.'"),
        ("a//b", "(empty)"),
        ("a/", "(empty)"),
        ("a\\..\\b", "backslash"),
        ("nul\0", "NUL"),
        ("new\nline\tand\x1b[31m escape", None),
        ("x" * 256, "255 bytes"),
    ],
)
def test_unsafe_relpath(relpath: str, why: str | None) -> None:
    found = unsafe_relpath(relpath)
    assert (found is None) if why is None else (why in (found or ""))


@pytest.mark.parametrize("ns", [0, 1, 1_700_000_000_123_456_789, 1_500_000_000, -1, -1_500_000_000])
def test_mtime_text_round_trips(ns: int) -> None:
    assert mtime_from_text(mtime_to_text(ns)) == ns


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "1e9", "--1"])
def test_bad_mtime_text_is_none(text: str) -> None:
    assert mtime_from_text(text) is None


def test_file_mtime_prefers_metadata() -> None:
    assert file_mtime(ObjectInfo(1, 5_000_000_000, '"e"', {"mtime": "1.5"})) == 1_500_000_000
    assert file_mtime(ObjectInfo(1, 5_000_000_000, '"e"', {})) == 5_000_000_000
    assert file_mtime(ObjectInfo(1, 5_000_000_000, '"e"', {"mtime": "junk"})) == 5_000_000_000


def test_write_is_atomic_sets_mtime_and_mark_read_back_by_the_walker(tmp_path: Path) -> None:
    tree = LocalTree(str(tmp_path))
    tree.write("a/b/c.txt", [b"hello ", b"world"], mtime_ns=1_600_000_000_000_000_001, etag='"abc"')

    path = tmp_path / "a/b/c.txt"
    assert path.read_bytes() == b"hello world"
    assert path.stat().st_mtime_ns == 1_600_000_000_000_000_001
    (entry,) = scan(str(tmp_path), filters=Filter(), marks=True)
    assert not isinstance(entry, Problem) and entry[0] == "a/b/c.txt"
    assert entry[1].etag == '"abc"'
    os.utime(path, ns=(1, 1_600_000_000_000_000_002))  # edited since: the mark no longer holds
    (entry,) = scan(str(tmp_path), filters=Filter(), marks=True)
    assert not isinstance(entry, Problem) and entry[1].etag is None


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    tree = LocalTree(str(tmp_path))

    def broken() -> list[bytes]:
        raise ConnectionResetError("stream broke")

    with pytest.raises(ConnectionResetError):
        tree.write("x.txt", (c for c in broken()), mtime_ns=0, etag=None)
    assert list(tmp_path.iterdir()) == []


def test_symlinked_directories_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "link")
    tree = LocalTree(str(root))

    with pytest.raises(PathRefused):
        tree.write("link/x.txt", [b"x"], mtime_ns=0, etag=None)
    with pytest.raises(PathRefused):
        tree.remove("link/x.txt")
    assert list(outside.iterdir()) == []


def test_remove_unlinks_a_symlink_not_its_target(tmp_path: Path) -> None:
    target = tmp_path / "target.txt"
    target.write_text("keep me")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(target, root / "link.txt")

    LocalTree(str(root)).remove("link.txt")

    assert target.read_text() == "keep me" and not (root / "link.txt").exists()


def test_prune_removes_only_emptied_directories(tmp_path: Path) -> None:
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    (tmp_path / "c/keep.txt").write_text("k")
    LocalTree(str(tmp_path)).prune(["a/b/gone.txt", "c/gone.txt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_temp_names_and_exact_file_systems(tmp_path: Path) -> None:
    assert is_temp_name("a/.s3sync-0123456789abcdef.tmp")
    assert not is_temp_name("a/.s3sync-notours.tmp")
    assert LocalTree(str(tmp_path)).folding() is None  # ext4 and tmpfs compare names exactly


def test_a_destination_that_is_a_file_cannot_be_used(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SourceError, match="cannot be used"):
        LocalTree(str(tmp_path / "file"))


def test_a_pending_file_written_by_path_commits_with_mtime_and_mark(tmp_path: Path) -> None:
    tree = LocalTree(str(tmp_path))
    pending = tree.begin("a/b/c.txt")
    assert pending is not None
    with open(pending.path, "wb") as out:  # as awscrt writes it: by the /proc path
        out.write(b"fetched")
    assert not (tmp_path / "a/b/c.txt").exists()  # nothing under the real name yet
    pending.commit(mtime_ns=1_600_000_000_000_000_000, etag='"e"', size=7)

    path = tmp_path / "a/b/c.txt"
    assert path.read_bytes() == b"fetched"
    assert path.stat().st_mtime_ns == 1_600_000_000_000_000_000
    (entry,) = scan(str(tmp_path), filters=Filter(), marks=True)
    assert not isinstance(entry, Problem) and entry[1].etag == '"e"'
    assert [p.name for p in (tmp_path / "a/b").iterdir()] == ["c.txt"]


def test_an_abandoned_pending_file_leaves_nothing(tmp_path: Path) -> None:
    tree = LocalTree(str(tmp_path))
    pending = tree.begin("x/y.txt")
    assert pending is not None
    with open(pending.path, "wb") as out:
        out.write(b"half")
    pending.abandon()
    assert list((tmp_path / "x").iterdir()) == []


def test_a_pending_file_is_reached_through_the_directory_not_its_name(tmp_path: Path) -> None:
    """Once the directory is open, a symlink swapped in for its name leads nowhere."""
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    tree = LocalTree(str(root))
    pending = tree.begin("d/f.txt")
    assert pending is not None
    os.rename(root / "d", root / "moved")
    os.symlink(outside, root / "d")
    with open(pending.path, "wb") as out:
        out.write(b"x")
    pending.commit(mtime_ns=0, etag=None, size=1)
    assert list(outside.iterdir()) == []
    assert (root / "moved/f.txt").read_bytes() == b"x"


def test_writes_into_a_directory_removed_meanwhile_create_it_again(tmp_path: Path) -> None:
    tree = LocalTree(str(tmp_path))
    tree.write("d/one.txt", [b"1"], mtime_ns=0, etag=None)  # keeps d's descriptor
    (tmp_path / "d/one.txt").unlink()
    (tmp_path / "d").rmdir()
    tree.write("d/two.txt", [b"2"], mtime_ns=0, etag=None)
    assert (tmp_path / "d/two.txt").read_bytes() == b"2"


def test_many_directories_keep_a_bounded_number_of_descriptors(tmp_path: Path) -> None:
    tree = LocalTree(str(tmp_path))
    before = len(os.listdir("/proc/self/fd"))
    pendings = [tree.begin(f"held/{i}.txt") for i in range(3)]  # in use while others churn
    for i in range(300):
        tree.write(f"d{i}/f.txt", [b"x"], mtime_ns=0, etag=None)
    assert len(os.listdir("/proc/self/fd")) - before < 100
    for pending in pendings:
        assert pending is not None
        with open(pending.path, "wb") as out:  # still reachable, though long evicted
            out.write(b"held")
        pending.commit(mtime_ns=0, etag=None, size=4)
    assert sorted(p.name for p in (tmp_path / "held").iterdir()) == ["0.txt", "1.txt", "2.txt"]
    tree.close()
    assert len(os.listdir("/proc/self/fd")) <= before - 1  # the root and every kept one
