"""S3 ETags computed locally: plain MD5 for single-part objects, MD5 of part MD5s for multipart.

A listing's ETag ``"<hex>-N"`` says an object went up in N parts but not their size. The
part size is one that splits the object's size into exactly N parts; s3sync tries the
one it would use itself first, then those the common tools use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import hashlib

MIB = 1024 * 1024
MAX_PARTS = 10_000
# aws-cli/boto3 8 MiB, rclone 5 MiB, s3cmd 15 MiB, minio/mc 16 MiB, s5cmd 50 MiB, 64 MiB
COMMON_PART_SIZES = (8 * MIB, 5 * MIB, 15 * MIB, 16 * MIB, 50 * MIB, 64 * MIB, 100 * MIB)


def md5(data: bytes = b"") -> hashlib._Hash:
    """Return an MD5 hasher that has been fed *data* (an ETag is an MD5, or one of MD5s).

    hashlib is imported on the first call: loading it (and OpenSSL) would cost every
    run 2 ms at start, a tenth of what a no-op push with an index spends in its own code.
    """
    import hashlib

    return hashlib.md5(data, usedforsecurity=False)


def used_part_size(size: int, part_size: int) -> int:
    """Return the part size an upload of *size* bytes uses: grown to fit 10,000 parts."""
    return max(part_size, math.ceil(size / MAX_PARTS))


def parts_of(etag: str) -> int:
    """Return the number of parts an ETag says (0 for a single-part object)."""
    _, dash, count = etag.strip('"').rpartition("-")
    return int(count) if dash and count.isdigit() else 0


def candidate_part_sizes(size: int, parts: int, preferred: Iterable[int]) -> list[int]:
    """Return the part sizes, most likely first, that split *size* bytes into *parts* parts."""
    found: list[int] = []
    if parts <= 0:
        return found
    for part_size in (*preferred, *COMMON_PART_SIZES):
        fits = part_size > 0 and math.ceil(size / part_size) == parts
        if fits and part_size not in found:
            found.append(part_size)
    return found


class EtagHasher:
    """Computes, in one pass, the ETag a file would have whole and in parts of each size."""

    def __init__(self, part_sizes: Iterable[int] = ()) -> None:
        self._whole = md5()
        self._parts = {size: _PartHasher(size) for size in part_sizes}

    def update(self, data: bytes) -> None:
        """Feed the next *data* of the file."""
        self._whole.update(data)
        for hasher in self._parts.values():
            hasher.update(data)

    def single(self) -> str:
        """Return the ETag of the file uploaded in one part."""
        return f'"{self._whole.hexdigest()}"'

    def multipart(self, part_size: int) -> str:
        """Return the ETag of the file uploaded in parts of *part_size* (one of those given)."""
        return self._parts[part_size].etag()


class _PartHasher:
    def __init__(self, part_size: int) -> None:
        self.part_size = part_size
        self.digests: list[bytes] = []
        self.current = md5()
        self.filled = 0

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            take = min(len(view), self.part_size - self.filled)
            self.current.update(view[:take])
            self.filled += take
            view = view[take:]
            if self.filled == self.part_size:
                self.digests.append(self.current.digest())
                self.current = md5()
                self.filled = 0

    def etag(self) -> str:
        return _combined(self.digests + ([self.current.digest()] if self.filled else []))


def _combined(digests: Sequence[bytes]) -> str:
    combined = md5(b"".join(digests)).hexdigest()
    return f'"{combined}-{len(digests)}"'


def multipart_etag(part_etags: Sequence[str]) -> str | None:
    """Return the ETag S3 gives the object completed from parts with *part_etags* (the
    MD5s UploadPart answered), or None when one of them is not an MD5."""
    try:
        digests = [bytes.fromhex(e.strip('"')) for e in part_etags]
    except ValueError:
        return None
    return _combined(digests) if all(len(d) == 16 for d in digests) else None


def same_content(remote_etag: str, hasher: EtagHasher, part_sizes: Iterable[int]) -> bool:
    """Return True when the file fed to *hasher* has *remote_etag* in some tried layout."""
    if parts_of(remote_etag) == 0:
        return hasher.single() == remote_etag
    return any(hasher.multipart(size) == remote_etag for size in part_sizes)


def cached_verdict(
    cached: dict[int, str], etag: str, size: int, preferred: Iterable[int]
) -> bool | None:
    """Return whether known ETags of a file (part size -> ETag, 0 for whole) match *etag*.

    None means the cache cannot tell (a part size it never computed): read the file.
    """
    if parts_of(etag) == 0:
        whole = cached.get(0)
        return None if whole is None else whole == etag
    sizes = candidate_part_sizes(size, parts_of(etag), preferred)
    if any(cached.get(s) == etag for s in sizes):
        return True
    return False if sizes and all(s in cached for s in sizes) else None
