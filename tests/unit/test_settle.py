"""hashing.settle: whether a file of an object's size holds its bytes, with the fewest requests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from s3sync.etags import MIB
from s3sync.hashing import Verdict, md5_shaped, settle
from s3sync.model import ObjectInfo, Settled, Stat

MTIME = 1_700_000_000_123_456_789
BODY = b"<html>the same bytes</html>"


def quoted_md5(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def multipart(data: bytes, part: int) -> str:
    digests = b"".join(hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part))
    return f'"{hashlib.md5(digests).hexdigest()}-{-(-len(data) // part)}"'


class Head:
    """Answers HEAD with *info* and counts the requests."""

    def __init__(self, info: ObjectInfo | None = None) -> None:
        self.info = info or ObjectInfo(0, 0, "", {})
        self.calls = 0

    def __call__(self) -> ObjectInfo:
        self.calls += 1
        return self.info


def info(*, mtime: int | None = MTIME, encryption: str | None = None, **meta: str) -> ObjectInfo:
    metadata = dict(meta)
    if mtime is not None:
        metadata["mtime"] = f"{mtime // 10**9}.{mtime % 10**9:09d}"
    return ObjectInfo(0, 0, "", metadata, {}, encryption)


def run(path: Path, etag: str, head: Head, *, by_mtime: bool = True, mtime: int = MTIME) -> Verdict:
    remote = Stat(path.stat().st_size, 0, etag)
    return settle(
        str(path), remote, mtime_ns=mtime, part_sizes=[5 * MIB], head=head, by_mtime=by_mtime
    )


@pytest.fixture
def page(tmp_path: Path) -> Path:
    path = tmp_path / "page.html"
    path.write_bytes(BODY)
    return path


def test_same_md5_is_settled_by_content_without_a_request(page: Path) -> None:
    head = Head()
    verdict = run(page, quoted_md5(BODY), head)
    assert verdict == (True, Settled.CONTENT, ((0, quoted_md5(BODY)),), len(BODY))
    assert head.calls == 0


def test_uppercase_or_unquoted_md5_is_the_same_etag(page: Path) -> None:
    head = Head()
    assert run(page, hashlib.md5(BODY).hexdigest().upper(), head).same
    assert head.calls == 0


def test_another_md5_in_checksum_mode_is_changed_without_a_request(page: Path) -> None:
    head = Head()
    verdict = run(page, quoted_md5(b"other"), head, by_mtime=False)
    assert verdict[:2] == (False, Settled.CONTENT)
    assert head.calls == 0


def test_another_md5_is_a_change_without_a_request(page: Path) -> None:
    head = Head(info())  # the recorded mtime is the file's, but the bytes differ
    verdict = run(page, quoted_md5(b"other"), head)
    assert verdict[:2] == (False, Settled.CONTENT)
    assert head.calls == 0  # no HEAD per changed file to ask whether it is encrypted


@pytest.mark.parametrize("encryption", ["aws:kms", "aws:kms:dsse", "SSE-C"])
def test_encrypted_multipart_object_is_settled_by_its_recorded_mtime(
    tmp_path: Path, encryption: str
) -> None:
    data = bytes(range(256)) * (48 * 1024 + 3)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    etag = '"0123456789abcdef0123456789abcdef-3"'  # 3 parts, but no MD5 of them
    same = Head(info(encryption=encryption, partsize=str(5 * MIB)))
    other = Head(info(mtime=MTIME + 1, encryption=encryption, partsize=str(5 * MIB)))

    assert run(path, etag, same)[:2] == (True, Settled.METADATA)
    assert run(path, etag, other)[:2] == (False, Settled.METADATA)
    assert same.calls == other.calls == 1
    plain = Head(info(partsize=str(5 * MIB)))  # not encrypted: the part MD5s said no
    assert run(path, etag, plain)[:2] == (False, Settled.CONTENT)


def test_etag_of_another_shape_asks_the_object_once(page: Path) -> None:
    head = Head(info())
    verdict = run(page, '"seaweed-or-other"', head)
    assert verdict == (True, Settled.METADATA, (), 0)  # nothing read
    assert head.calls == 1


def test_nothing_recorded_is_unsettled_and_counts_as_changed(page: Path) -> None:
    head = Head(info(mtime=None))
    assert run(page, '"other-shape"', head)[:2] == (False, Settled.UNSETTLED)
    assert run(page, '"x"', Head(info()), by_mtime=False)[:2] == (
        False,
        Settled.UNSETTLED,
    )


def test_multipart_etag_of_a_fitting_part_size_needs_no_request(tmp_path: Path) -> None:
    data = bytes(range(256)) * (48 * 1024 + 3)  # 12 MiB and a bit: 3 parts of 5 MiB
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    head = Head()
    assert run(path, multipart(data, 5 * MIB), head)[:2] == (True, Settled.CONTENT)
    assert head.calls == 0


def test_multipart_of_unknown_part_size_falls_back_to_recorded_mtime(tmp_path: Path) -> None:
    data = bytes(range(256)) * (48 * 1024 + 3)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    etag = multipart(data, 7 * MIB)  # 2 parts: no common size gives 2 parts of this file
    head = Head(info())  # no partsize recorded, no MD5: only the mtime can tell
    assert run(path, etag, head)[:2] == (True, Settled.METADATA)
    assert head.calls == 1


def test_multipart_of_recorded_part_size_is_settled_by_content(tmp_path: Path) -> None:
    data = bytes(range(256)) * (48 * 1024 + 3)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    head = Head(info(mtime=MTIME + 5, partsize=str(7 * MIB)))
    assert run(path, multipart(data, 7 * MIB), head)[:2] == (True, Settled.CONTENT)
    assert head.calls == 1


@pytest.mark.parametrize(
    ("etag", "shaped"),
    [
        ('"d41d8cd98f00b204e9800998ecf8427e"', True),
        ("d41d8cd98f00b204e9800998ecf8427e", True),
        ('"d41d8cd98f00b204e9800998ecf8427e-12"', True),
        ('"d41d8cd98f00b204e9800998ecf8427"', False),
        ('"not-an-md5"', False),
        ("", False),
    ],
)
def test_md5_shape(etag: str, shaped: bool) -> None:
    assert md5_shaped(etag) is shaped
