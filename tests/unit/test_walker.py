"""The walker on real local trees: what it yields, what it reports, what it never opens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from s3sync.errors import SourceError
from s3sync.filters import Filter
from s3sync.model import Problem, Severity, Stat
from s3sync.walker import check_root, scan, scan_batches


def walk(
    root: Path, rules: list[tuple[bool, str]] | None = None, follow: bool = True
) -> tuple[dict[str, Stat], dict[str, Problem]]:
    files: dict[str, Stat] = {}
    problems: dict[str, Problem] = {}
    for item in scan(str(root), filters=Filter(rules or []), follow_symlinks=follow):
        if isinstance(item, Problem):
            problems[item.path] = item
        else:
            files[item[0]] = item[1]
    return files, problems


def test_yields_relative_posix_paths_with_size_and_ns_mtime(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.txt").write_bytes(b"12345")
    os.utime(tmp_path / "a" / "b" / "c.txt", ns=(1, 1_600_000_000_000_000_123))
    (tmp_path / "top.txt").write_bytes(b"")

    files, problems = walk(tmp_path)

    assert files == {
        "a/b/c.txt": Stat(5, 1_600_000_000_000_000_123),
        "top.txt": Stat(0, files["top.txt"].mtime_ns),
    }
    assert problems == {}


def test_excluded_directories_are_not_descended(tmp_path: Path) -> None:
    (tmp_path / "skip").mkdir()
    (tmp_path / "skip" / "x").write_text("x")
    os.mkfifo(tmp_path / "skip" / "fifo")  # would be a warning if the walk went in
    (tmp_path / "keep.txt").write_text("k")

    files, problems = walk(tmp_path, [(False, "skip/")])

    assert set(files) == {"keep.txt"} and problems == {}


def test_undecodable_names_are_errors_and_skipped(tmp_path: Path) -> None:
    with open(os.path.join(os.fsencode(tmp_path), b"bad-\xff.txt"), "wb") as f:
        f.write(b"x")
    (tmp_path / "good.txt").write_text("g")

    files, problems = walk(tmp_path)

    assert set(files) == {"good.txt"}
    (problem,) = problems.values()
    assert problem.severity is Severity.ERROR and "UTF-8" in problem.message
    assert problem.path == "bad-\ufffd.txt"


def test_links_loops_and_special_files(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("f")
    os.symlink("d", tmp_path / "alias")
    os.symlink("nowhere", tmp_path / "broken")
    os.symlink("self", tmp_path / "self")
    os.symlink("..", tmp_path / "d" / "up")
    os.mkfifo(tmp_path / "fifo")

    files, problems = walk(tmp_path)

    assert set(files) == {"d/f", "alias/f"}
    assert {p: v.severity for p, v in problems.items()} == {
        "broken": Severity.WARNING,
        "self": Severity.WARNING,
        "d/up": Severity.WARNING,
        "alias/up": Severity.WARNING,
        "fifo": Severity.WARNING,
    }

    files, problems = walk(tmp_path, follow=False)
    assert set(files) == {"d/f"}
    assert set(problems) == {"alias", "broken", "self", "d/up", "fifo"}


def test_check_root(tmp_path: Path) -> None:
    check_root(str(tmp_path))
    with pytest.raises(SourceError, match="does not exist"):
        check_root(str(tmp_path / "missing"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(SourceError, match="is not a directory"):
        check_root(str(tmp_path / "file"))


def test_batches_hold_what_scan_yields_in_order_whole_directories_at_a_time(
    tmp_path: Path,
) -> None:
    for n in range(7):
        (tmp_path / f"f{n}").write_bytes(b"x" * n)
    os.mkfifo(tmp_path / "pipe")  # a problem, in its place among the files
    for name in ("sub/a", "sub/b", "sub2/c", "sub3/d"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")

    batches = list(scan_batches(str(tmp_path), size=3, filters=Filter([])))

    # the top directory alone fills a batch; sub and sub2 together reach 3; sub3 is last
    assert [len(b) for b in batches] == [8, 3, 1]
    assert [v for b in batches for v in b] == list(scan(str(tmp_path), filters=Filter([])))
    assert isinstance(batches[0][7], Problem)
    assert [v[0] for v in batches[1] if not isinstance(v, Problem)] == ["sub/a", "sub/b", "sub2/c"]


def test_files_come_in_the_order_s3_lists_their_keys(tmp_path: Path) -> None:
    # a directory's files come where "name/" sorts, not where "name" does: after
    # "a.html" and "a-b" (".", "-" sort before "/"), before "a0"
    names = ["a0", "a.html", "a-b/x", "a/b", "a/b0", "a/b-c/d", "a/b.txt", "é", "z/y/x", "Z"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")

    walked = [v[0] for v in scan(str(tmp_path), filters=Filter([])) if not isinstance(v, Problem)]

    assert walked == sorted(names, key=lambda name: name.encode("utf-8"))
    assert walked == [
        "Z", "a-b/x", "a.html", "a/b", "a/b-c/d", "a/b.txt", "a/b0", "a0", "z/y/x", "é",
    ]  # fmt: skip
