"""checking.ContentChecks: batched content checks on real files, no request."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from s3sync.checking import BATCH_FILES, SMALL, Checked, ContentChecks, batchable
from s3sync.model import Reason, Settled, Stat, Upload


def upload(root: Path, name: str, etag: str | None, *, size: int | None = None) -> Upload:
    path = root / name
    length = path.stat().st_size if size is None and path.exists() else (size or 0)
    return Upload(name, name, Stat(length, 1), Reason.UNVERIFIED, Stat(length, 0, etag))


def md5(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def verdicts(found: list[Checked]) -> dict[str, object]:
    out: dict[str, object] = {}
    for checked in found:
        if checked.error is not None:
            out[checked.upload.path] = type(checked.error).__name__
        else:
            assert checked.verdict is not None
            out[checked.upload.path] = (checked.verdict.same, checked.verdict.by)
    return out


def test_every_taken_file_gets_its_verdict_from_its_bytes(tmp_path: Path) -> None:
    files = {f"f{i}.txt": f"content {i}".encode() * (i + 1) for i in range(BATCH_FILES * 2 + 5)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    checks = ContentChecks(str(tmp_path), threads=2, stopping=lambda: False)
    taken = []
    for n, (name, data) in enumerate(files.items()):
        etag = md5(data) if n % 3 else md5(b"other bytes")
        taken.append(upload(tmp_path, name, etag.upper() if n % 5 == 1 else etag))
    taken.append(upload(tmp_path, "gone.txt", md5(b""), size=3))
    for item in taken:
        checks.take(item)

    found = [*checks.ready(), *checks.rest()]
    checks.close()

    expected: dict[str, object] = {
        name: (bool(n % 3), Settled.CONTENT) for n, name in enumerate(files)
    }
    expected["gone.txt"] = "FileNotFoundError"
    assert verdicts(found) == expected
    assert len(found) == len(taken) == checks.files
    read = sum(c.verdict.read for c in found if c.verdict is not None)
    assert read == sum(len(d) for d in files.values())


def test_a_full_batch_is_sent_at_once_and_ready_never_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").write_bytes(b"a")
    gate = threading.Event()
    checks = ContentChecks(str(tmp_path), threads=1, stopping=lambda: False)
    original = checks._check

    def held(item: Upload) -> Checked:
        gate.wait(10)
        return original(item)

    monkeypatch.setattr(checks, "_check", held)
    for _ in range(BATCH_FILES):
        checks.take(upload(tmp_path, "a", md5(b"a")))

    assert list(checks.ready()) == []  # sent, held on its thread: nothing to wait for
    gate.set()
    assert len(list(checks.rest())) == BATCH_FILES
    checks.close()


def test_once_stopping_unsent_checks_are_dropped(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    stop = threading.Event()
    checks = ContentChecks(str(tmp_path), threads=1, stopping=stop.is_set)
    for _ in range(3):
        checks.take(upload(tmp_path, "a", md5(b"a")))
    stop.set()
    assert list(checks.rest()) == []
    checks.close()


@pytest.mark.parametrize(
    ("etag", "size", "batched"),
    [
        ('"0123456789abcdef0123456789abcdef"', 10, True),
        ('"0123456789abcdef0123456789abcdef-2"', 10, False),  # multipart: may need a HEAD
        ('"seaweed-style"', 10, False),  # no MD5: the recorded mtime needs a HEAD
        (None, 10, False),
        ('"0123456789abcdef0123456789abcdef"', SMALL + 1, False),  # large: an action
    ],
)
def test_batchable(tmp_path: Path, etag: str | None, size: int, batched: bool) -> None:
    assert batchable(upload(tmp_path, "x", etag, size=size)) is batched
