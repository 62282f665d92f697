"""Reading a local file once to learn its ETags, and settling whether it holds an object."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from s3sync.etags import EtagHasher, candidate_part_sizes, md5, parts_of
from s3sync.model import ObjectInfo, Settled, Stat, mtime_from_text

CHUNK = 1024 * 1024


def hash_file(path: str, part_sizes: Iterable[int], size: int = CHUNK) -> tuple[EtagHasher, int]:
    """Return the hasher fed with the whole file at *path*, and the bytes read (*size*:
    what the scan saw, see ``_feed``)."""
    hasher = EtagHasher(part_sizes)
    return hasher, _feed(path, size, hasher.update)


def file_etag(path: str, size: int) -> tuple[str, int]:
    """Return the single-part ETag (quoted MD5) of the file at *path*, and the bytes read."""
    hasher = md5()
    read = _feed(path, size, hasher.update)
    return f'"{hasher.hexdigest()}"', read


def _feed(path: str, size: int, update: Callable[[bytes], object]) -> int:
    """Feed the file at *path* to *update* a chunk at a time; return the bytes read.

    Memory stays at one chunk whatever the file's size. The first read asks for the
    *size* the scan saw and one byte more: a small file is read in one call, and its
    short read is the end (three system calls a file, where ``open()`` makes seven;
    every one lets the other threads take the interpreter).
    """
    read = 0
    want = min(size + 1, CHUNK)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        while chunk := os.read(fd, want):
            update(chunk)
            read += len(chunk)
            if len(chunk) < want:  # a regular file's short read is its end
                break
            want = CHUNK
    finally:
        os.close(fd)
    return read


def _md5_from_metadata(metadata: Mapping[str, str]) -> str | None:
    """Return the whole-file MD5 (quoted hex) other tools record in metadata, if any."""
    if re.fullmatch(r"[0-9a-f]{32}", metadata.get("md5", "")):
        return f'"{metadata["md5"]}"'
    try:  # rclone stores it base64-encoded as md5chksum
        raw = base64.b64decode(metadata.get("md5chksum", ""), validate=True)
    except ValueError:
        return None
    return f'"{raw.hex()}"' if len(raw) == 16 else None


def md5_shaped(etag: str) -> bool:
    """Return True when *etag* can be an MD5 (``"<32 hex>"``) or one of part MD5s
    (``"<32 hex>-N"``); other servers' and some encrypted objects' ETags are not."""
    return _MD5_ETAG.fullmatch(etag) is not None


_MD5_ETAG = re.compile(r'"?[0-9a-fA-F]{32}(-[0-9]+)?"?')
# server-side encryption with these keys gives ETags that are not the MD5 of the bytes
HIDES_MD5 = ("aws:kms", "aws:kms:dsse", "SSE-C")


class Verdict(NamedTuple):
    """Whether a file holds an object's bytes, how that was settled, the file's ETags
    learnt on the way (part size, 0 for whole; ETag) and the bytes read."""

    same: bool
    by: Settled
    hashes: tuple[tuple[int, str], ...] = ()
    read: int = 0


def settle(
    path: str,
    remote: Stat,
    *,
    mtime_ns: int,
    part_sizes: Iterable[int],
    head: Callable[[], ObjectInfo],
    by_mtime: bool,
) -> Verdict:
    """Return whether the file at *path* (of mtime *mtime_ns*, same size) holds the
    object *remote*, settled with the fewest requests.

    By content first: the file's MD5 against the listing's ETag, or for a multipart
    ETag the part sizes that fit its part count, *part_sizes* first. The object is asked
    (*head*, at most once) only when that cannot tell: a multipart ETag no tried layout
    gives (the object may record its part size or another tool's MD5), or an ETag that
    is no MD5. Where content cannot tell (or the HEAD shows SSE-KMS or SSE-C, whose ETags
    are no MD5) and *by_mtime*, the ``mtime`` the object recorded of its file decides;
    where nothing can, the verdict is "not the same", UNSETTLED. A single-part ETag that
    differs from the file's MD5 is a change: no HEAD asks whether it is an MD5 at all.
    """
    etag = remote.etag or ""
    asked: list[ObjectInfo] = []

    def info() -> ObjectInfo:
        if not asked:
            asked.append(head())
        return asked[0]

    hashes: tuple[tuple[int, str], ...] = ()
    read = 0
    if md5_shaped(etag):
        found = _by_content(path, remote, part_sizes, info)
        hashes, read = found.hashes, found.read
        told = found.by is Settled.CONTENT and (found.same or not asked or _md5_etag(asked[0]))
        if told or not by_mtime:
            return found
    if not by_mtime:
        return Verdict(False, Settled.UNSETTLED, hashes, read)
    recorded = mtime_from_text(info().metadata.get("mtime", ""))
    if recorded is None:
        return Verdict(False, Settled.UNSETTLED, hashes, read)
    return Verdict(recorded == mtime_ns, Settled.METADATA, hashes, read)


def _md5_etag(info: ObjectInfo) -> bool:
    """Return True unless the object's encryption makes its ETag something else."""
    return info.encryption not in HIDES_MD5


def _by_content(
    path: str, remote: Stat, part_sizes: Iterable[int], info: Callable[[], ObjectInfo]
) -> Verdict:
    """Compare the file with an MD5-shaped ETag; UNSETTLED when no layout gives it."""
    etag = remote.etag or ""
    multipart = parts_of(etag) > 0
    sizes = candidate_part_sizes(remote.size, parts_of(etag), part_sizes) if multipart else []
    hasher, read = hash_file(path, sizes, remote.size)
    hashes = ((0, hasher.single()), *((s, hasher.multipart(s)) for s in sizes))
    if any(same_md5(known, etag) for _, known in hashes):
        return Verdict(True, Settled.CONTENT, hashes, read)
    if not multipart:
        return Verdict(False, Settled.CONTENT, hashes, read)
    # no layout we tried gives this ETag: ask the object how it was made before saying no
    metadata = info().metadata
    if _md5_from_metadata(metadata) == hasher.single():
        return Verdict(True, Settled.CONTENT, hashes, read)
    recorded = metadata.get("partsize", "")
    if not recorded.isdigit() or int(recorded) <= 0:
        return Verdict(False, Settled.UNSETTLED, hashes, read)
    if int(recorded) in sizes:
        return Verdict(False, Settled.CONTENT, hashes, read)
    again, more = hash_file(path, [int(recorded)])
    layout = (int(recorded), again.multipart(int(recorded)))
    return Verdict(same_md5(layout[1], etag), Settled.CONTENT, (*hashes, layout), read + more)


def same_md5(ours: str, etag: str) -> bool:
    """Return True when our quoted lower-case hex ETag *ours* is *etag* (quoted or not,
    in either case)."""
    return ours.strip('"') == etag.strip('"').lower()
