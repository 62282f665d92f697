"""gzip as push sends it (deterministic) and as restore takes it back (streamed, checked).

The same file always compresses to the same bytes: no name and mtime 0 in the header,
one fixed level. So an unchanged file never needs uploading again, and the ETag of its
object is stable from run to run on one machine.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from s3sync.etags import md5 as etag_md5
from s3sync.model import Stat

if TYPE_CHECKING:
    from s3sync.snapshot import Snapshot

LEVEL = 9  # fixed: the level is part of what makes the output the same every time
CHUNK = 1024 * 1024
# the gzip header of RFC 1952: magic, deflate, no flags, mtime 0, max compression, Unix
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03"

# user metadata of a compressed object: the size and MD5 of the file it was made from
SOURCE_SIZE_KEY = "s3sync-gzip"
SOURCE_MD5_KEY = "s3sync-source-md5"


class CorruptGzip(Exception):
    """An object said to be gzip does not decompress to the size it recorded."""


def gzip_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield the gzip stream of the concatenated *chunks*, deterministic for equal input."""
    yield _HEADER
    deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    crc = 0
    size = 0
    for chunk in chunks:
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        if out := deflate.compress(chunk):
            yield out
    yield deflate.flush()
    yield (crc & 0xFFFFFFFF).to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")


def gzip_bytes(data: bytes) -> bytes:
    """Return the deterministic gzip of *data*."""
    return b"".join(gzip_chunks((data,)))


def gunzip_chunks(chunks: Iterable[bytes], *, expected_size: int | None = None) -> Iterator[bytes]:
    """Yield the decompressed bytes of the gzip stream in *chunks*; CorruptGzip when the
    stream is broken or does not decompress to *expected_size* bytes."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip header and trailer checked
    size = 0
    try:
        for chunk in chunks:
            out = inflate.decompress(chunk)
            size += len(out)
            yield out
        tail = inflate.flush()
    except zlib.error as exc:
        raise CorruptGzip(f"stored gzip data is corrupt: {exc}") from None
    size += len(tail)
    yield tail
    if not inflate.eof:
        raise CorruptGzip("stored gzip data is cut short")
    if expected_size is not None and size != expected_size:
        raise CorruptGzip(f"stored gzip data holds {size} bytes, not the {expected_size} recorded")


class GzipSource:
    """A Snapshot's file, compressed: what put_file sends for a file with gzip on.

    The compressed bytes are held in memory (website text files are small); ``stat`` is
    theirs, ``file`` the file's. The file is read once, then checked unchanged.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        self.file = snapshot.stat
        md5 = etag_md5()

        def pieces() -> Iterator[bytes]:
            for offset in range(0, self.file.size, CHUNK):
                piece = snapshot.read(offset, min(CHUNK, self.file.size - offset))
                md5.update(piece)
                yield piece

        self._data = b"".join(gzip_chunks(pieces()))
        snapshot.verify()
        self.source_md5 = md5.hexdigest()
        self.stat = Stat(len(self._data), self.file.mtime_ns)

    def read(self, offset: int, length: int) -> bytes:
        """Return *length* compressed bytes from *offset*."""
        return self._data[offset : offset + length]

    def read_all(self) -> bytes:
        """Return all the compressed bytes."""
        return self._data

    def verify(self) -> None:
        """Nothing to do: the file was checked unchanged once compressed."""

    def metadata(self) -> dict[str, str]:
        """Return the user metadata that records the file this object was made from."""
        return {SOURCE_SIZE_KEY: str(self.file.size), SOURCE_MD5_KEY: self.source_md5}
