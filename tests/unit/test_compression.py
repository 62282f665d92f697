"""Deterministic gzip for push, checked decompression for restore."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3sync.compression import (
    SOURCE_MD5_KEY,
    SOURCE_SIZE_KEY,
    CorruptGzip,
    GzipSource,
    gunzip_chunks,
    gzip_bytes,
    gzip_chunks,
)
from s3sync.snapshot import Snapshot


@given(st.binary(max_size=5000), st.integers(min_value=1, max_value=700))
def test_any_bytes_compress_to_standard_gzip_the_same_way_however_they_are_split(
    data: bytes, cut: int
) -> None:
    whole = gzip_bytes(data)
    split = b"".join(gzip_chunks(data[i : i + cut] for i in range(0, len(data), cut)))
    assert split == whole
    assert gzip.decompress(whole) == data  # what a browser does
    assert b"".join(gunzip_chunks([whole[:cut], whole[cut:]], expected_size=len(data))) == data


def test_the_header_carries_no_time_and_no_name() -> None:
    out = gzip_bytes(b"<html></html>" * 50)
    assert out[:4] == b"\x1f\x8b\x08\x00" and out[4:8] == b"\x00\x00\x00\x00"
    assert len(out) < 100  # really compressed, at the fixed level


def test_broken_or_short_or_wrong_sized_streams_are_refused() -> None:
    good = gzip_bytes(b"x" * 1000)
    with pytest.raises(CorruptGzip, match="cut short"):
        list(gunzip_chunks([good[:-12]]))
    with pytest.raises(CorruptGzip, match="corrupt"):
        list(gunzip_chunks([good[:10] + b"\xff" * 20 + good[30:]]))
    with pytest.raises(CorruptGzip, match="holds 1000 bytes, not the 999"):
        list(gunzip_chunks([good], expected_size=999))


def test_a_gzip_source_is_the_compressed_file_and_records_the_file(tmp_path: Path) -> None:
    path = tmp_path / "app.js"
    body = b"function f() { return 1; }\n" * 4000
    path.write_bytes(body)
    os.utime(path, ns=(1, 1_600_000_000 * 10**9))
    with Snapshot(str(path)) as snapshot:
        source = GzipSource(snapshot)
    assert source.file.size == len(body) and source.file.mtime_ns == 1_600_000_000 * 10**9
    assert source.stat.size == len(source.read_all()) < len(body) // 50
    assert source.read(0, 10) + source.read(10, 10**9) == source.read_all()
    assert zlib.decompress(source.read_all(), 16 + zlib.MAX_WBITS) == body
    assert source.metadata() == {
        SOURCE_SIZE_KEY: str(len(body)),
        SOURCE_MD5_KEY: hashlib.md5(body).hexdigest(),
    }
