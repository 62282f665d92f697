"""Reading a local file once to learn its ETags (whole, and in parts of given sizes)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping

from s3sync.etags import EtagHasher, candidate_part_sizes, parts_of
from s3sync.model import ObjectInfo, Stat

CHUNK = 1024 * 1024


def hash_file(path: str, part_sizes: Iterable[int]) -> tuple[EtagHasher, int]:
    """Return the hasher fed with the whole file at *path*, and the bytes read.

    Memory stays at one chunk whatever the file's size.
    """
    hasher = EtagHasher(part_sizes)
    read = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
            read += len(chunk)
    return hasher, read


def _md5_from_metadata(metadata: Mapping[str, str]) -> str | None:
    """Return the whole-file MD5 (quoted hex) other tools record in metadata, if any."""
    if re.fullmatch(r"[0-9a-f]{32}", metadata.get("md5", "")):
        return f'"{metadata["md5"]}"'
    try:  # rclone stores it base64-encoded as md5chksum
        raw = base64.b64decode(metadata.get("md5chksum", ""), validate=True)
    except ValueError:
        return None
    return f'"{raw.hex()}"' if len(raw) == 16 else None


def content_matches(
    path: str,
    remote: Stat,
    *,
    part_sizes: Iterable[int],
    head: Callable[[], ObjectInfo],
) -> tuple[bool, tuple[tuple[int, str], ...], int]:
    """Return whether the file at *path* holds the object *remote*, its ETags, bytes read.

    The listing's ETag decides: MD5 for a single-part object; for a multipart one, the
    part sizes that fit its part count, *part_sizes* first. Only when none fits is the
    object asked (*head*) for the part size s3sync recorded, or another tool's MD5.
    """
    etag = remote.etag or ""
    multipart = parts_of(etag) > 0
    sizes = candidate_part_sizes(remote.size, parts_of(etag), part_sizes) if multipart else []
    hasher, read = hash_file(path, sizes)
    hashes = ((0, hasher.single()), *((s, hasher.multipart(s)) for s in sizes))
    if any(known == etag for _, known in hashes) or not multipart:
        return any(known == etag for _, known in hashes), hashes, read
    # no layout we tried gives this ETag: ask the object how it was made before saying no
    metadata = head().metadata
    if _md5_from_metadata(metadata) == hasher.single():
        return True, hashes, read
    recorded = metadata.get("partsize", "")
    if not recorded.isdigit() or int(recorded) in sizes or int(recorded) <= 0:
        return False, hashes, read
    again, more = hash_file(path, [int(recorded)])
    layout = (int(recorded), again.multipart(int(recorded)))
    return layout[1] == etag, (*hashes, layout), read + more
