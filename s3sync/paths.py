"""S3 URLs, keys and relative paths: the mapping between the two sides."""

from __future__ import annotations

import re
from typing import NamedTuple

from s3sync.errors import ConfigError

MAX_KEY_BYTES = 1024
# the extended attribute where restore records the ETag a file was restored from
MARK_XATTR = "user.s3sync"


class Location(NamedTuple):
    """A bucket and a key prefix that is empty or ends with ``/``."""

    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, relpath: str) -> str:
        """Return the key for the relative POSIX path *relpath*."""
        return self.prefix + relpath

    def relpath(self, key: str) -> str | None:
        """Return the relative path for *key*, or None when no local path can hold it.

        Keys that end with ``/``, have empty, ``.`` or ``..`` segments, or contain NUL
        have no local file; push leaves them alone and restore refuses them.
        """
        if not key.startswith(self.prefix):
            return None
        rel = key[len(self.prefix) :]
        if not rel or "\0" in rel:
            return None
        if any(part in ("", ".", "..") for part in rel.split("/")):
            return None
        return rel


# what a bucket name may hold (S3's rule, and the underscore older buckets may have);
# an uppercase name is no bucket anywhere: refused before any request, not "missing"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]*")


def parse_s3_url(url: str) -> Location:
    """Parse ``s3://BUCKET[/PREFIX]``; ``s3://b/site`` and ``s3://b/site/`` are the same place."""
    if not url.startswith("s3://"):
        raise ConfigError(f"'{url}' is not an S3 URL: write s3://BUCKET or s3://BUCKET/PREFIX")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ConfigError(f"'{url}' names no bucket: write s3://BUCKET or s3://BUCKET/PREFIX")
    if _BUCKET.fullmatch(bucket) is None:
        raise ConfigError(
            f"'{bucket}' is not a valid bucket name: S3's are lowercase letters, digits, "
            "dots and hyphens"
        )
    prefix = prefix.strip("/")
    return Location(bucket, prefix + "/" if prefix else "")


def parse_object_url(url: str) -> tuple[str, str]:
    """Parse ``s3://BUCKET/KEY`` into bucket and key (kept exactly as written)."""
    location = parse_s3_url(url)
    key = url[len("s3://") :].partition("/")[2]
    if not key or key.endswith("/"):
        raise ConfigError(f"'{url}' names no object: write s3://BUCKET/KEY")
    return location.bucket, key


def key_problem(key: str) -> str | None:
    """Return why *key* cannot be stored in S3, or None when it can."""
    if key.isascii() and len(key) <= MAX_KEY_BYTES:  # most keys: no need to encode them
        return None
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "name is not valid UTF-8 (check the file system encoding); skipped"
    if size > MAX_KEY_BYTES:
        return f"key is {size} bytes, over S3's limit of {MAX_KEY_BYTES}; skipped"
    return None


def ascii_room(prefix: str) -> int:
    """Return the longest ASCII relative path whose key under *prefix* S3 can store
    (-1: none, the prefix itself is not UTF-8). A walk checks only the other paths with
    ``key_problem``: its call for every file was a fortieth of a no-op run with an index."""
    try:
        return MAX_KEY_BYTES - len(prefix.encode("utf-8"))
    except UnicodeEncodeError:
        return -1


def ancestors(relpath: str) -> list[str]:
    """Return the directories above *relpath*, outermost first (``a/b/c`` -> ``a``, ``a/b``)."""
    parts = relpath.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def unsafe_relpath(relpath: str) -> str | None:
    """Return why *relpath* (from a key) must not be written under a local root, or None.

    Refused: absolute paths, empty, ``.`` and ``..`` segments, backslashes (another
    system's separator), NUL (no file name can hold it), segments over 255 bytes. Other
    control characters, a newline among them, are legal in a name and pushed as they
    are, so they come back (output escapes them).
    """
    if relpath.startswith("/"):
        return "absolute path"
    if "\\" in relpath:
        return "backslash in the name"
    if "\0" in relpath:
        return "NUL character in the name"
    for segment in relpath.split("/"):
        if segment in ("", ".", ".."):
            return f"'{segment or '(empty)'}' path segment"
        if len(segment.encode("utf-8", "surrogatepass")) > 255:
            return "a name over 255 bytes"
    return None


def endpoint_shown(url: str) -> str:
    """Return the endpoint URL *url* as messages, logs and an index's binding show it:
    without a user or password (never echoed), scheme and host in lower case, no
    trailing slash (``http://h:8333/`` and ``http://h:8333`` are one endpoint)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return url.rpartition("@")[2].rstrip("/")
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), parts.query, ""))
