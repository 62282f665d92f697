"""A Snapshot reads one version of a file or says the file changed while being read."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from s3sync.snapshot import Snapshot, SourceChanged
from tests.unit.stalled_write import PAGE, set_when_blocked, stalled_write


def after_the_next_tick(path: Path) -> None:
    """Return once a change now gets a later ctime than *path* has: file system times are
    coarse (a few ms), and a change inside the same tick would look like no change."""
    probe = path.with_name(".tick")
    then = path.stat().st_ctime_ns
    while True:
        probe.write_bytes(b"")
        if probe.stat().st_ctime_ns > then:
            return


def test_an_unchanged_file_reads_whole_with_the_status_it_was_opened_with(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    os.utime(path, ns=(1, 1_500_000_000_123_456_789))
    with Snapshot(str(path)) as snap:
        assert (snap.stat.size, snap.stat.mtime_ns) == (10, 1_500_000_000_123_456_789)
        assert snap.read_all() == b"0123456789"
        assert snap.read(3, 4) == b"3456"
        snap.verify()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda p: p.write_bytes(b"ABCDEFGHIJ"), id="same-size-rewrite"),
        pytest.param(lambda p: p.open("ab").write(b"more"), id="grown"),
        pytest.param(lambda p: os.truncate(p, 4), id="shrunk"),
        pytest.param(lambda p: os.utime(p, ns=(1, 1)), id="touched"),
        pytest.param(lambda p: p.unlink(), id="deleted"),
        pytest.param(lambda p: os.replace(p.with_name("other"), p), id="renamed-over"),
    ],
)
def test_any_change_after_opening_is_caught(tmp_path: Path, change: object) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    (tmp_path / "other").write_bytes(b"0123456789")
    after_the_next_tick(path)
    with Snapshot(str(path)) as snap:
        change(path)  # type: ignore[operator]
        with pytest.raises(SourceChanged):
            snap.read_all()


def test_a_same_size_rewrite_that_restores_the_mtime_is_still_caught(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    before = path.stat().st_mtime_ns
    after_the_next_tick(path)
    with Snapshot(str(path)) as snap:
        path.write_bytes(b"ABCDEFGHIJ")
        os.utime(path, ns=(before, before))  # what a careless writer or rsync -t does
        with pytest.raises(SourceChanged):
            snap.verify()


def test_a_fifo_or_directory_in_the_files_place_is_refused_without_blocking(
    tmp_path: Path,
) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    for name in ("fifo", "dir"):
        with pytest.raises(IsADirectoryError):
            Snapshot(str(tmp_path / name))


def test_a_racy_file_is_read_again_so_a_change_in_the_same_time_tick_is_caught(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    status = path.stat()
    with Snapshot(str(path)) as snap:
        assert snap.racy  # written just now: its times may not move on the next write
        assert snap.read(0, 10) == b"0123456789"
        path.write_bytes(b"ABCDEFGHIJ")
        # a write inside the same coarse tick moves no time; the ctime cannot be put
        # back from user space, so the snapshot is told the new one instead
        os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
        snap._signature = (10, status.st_mtime_ns, path.stat().st_ctime_ns, status.st_ino)
        with pytest.raises(SourceChanged):
            snap.verify()


def test_an_old_file_is_not_racy_and_is_read_once(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"old")
    os.utime(path, (1_600_000_000, 1_600_000_000))
    with Snapshot(str(path)) as snap:
        assert not snap.racy
        assert snap.read_all() == b"old"


def test_a_write_stopped_halfway_while_the_file_is_read_is_waited_out_and_caught(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"A" * 2 * PAGE)
    outcome: list[object] = []
    # the write set the file's times before it stopped: nothing moves them from here on
    with (
        stalled_write(str(path), b"B" * PAGE, b"B" * PAGE) as release,
        Snapshot(str(path)) as snap,
    ):
        assert snap.racy
        assert snap.read(0, 2 * PAGE) == b"B" * PAGE + b"A" * PAGE  # half written

        def check() -> None:
            try:
                snap.verify()
                outcome.append("verified")
            except SourceChanged as changed:
                outcome.append(changed)

        checker = threading.Thread(target=check)
        checker.start()
        watcher = set_when_blocked(release, checker)  # the write goes on once verify waits
        checker.join()
        watcher.join()
    assert path.read_bytes() == b"B" * 2 * PAGE
    assert isinstance(outcome[0], SourceChanged), "a half-written file passed as one version"
