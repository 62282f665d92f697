"""Content-Type of a file: a fixed extension table, then libmagic, then octet-stream.

The table answers first so the result never depends on the machine's mime.types.
"""

from __future__ import annotations

import threading
from typing import Any

OCTET_STREAM = "application/octet-stream"

_TYPES = {
    "html": "text/html",
    "htm": "text/html",
    "css": "text/css",
    "js": "text/javascript",
    "mjs": "text/javascript",
    "json": "application/json",
    "map": "application/json",
    "xml": "application/xml",
    "txt": "text/plain",
    "md": "text/markdown",
    "csv": "text/csv",
    "svg": "image/svg+xml",
    "ico": "image/vnd.microsoft.icon",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "ttf": "font/ttf",
    "otf": "font/otf",
    "eot": "application/vnd.ms-fontobject",
    "wasm": "application/wasm",
    "pdf": "application/pdf",
    "zip": "application/zip",
    "gz": "application/gzip",
    "tgz": "application/gzip",
    "mp3": "audio/mpeg",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "ogg": "audio/ogg",
    "webmanifest": "application/manifest+json",
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "toml": "application/toml",
    "ics": "text/calendar",
    "jsonld": "application/ld+json",
}

_TEXT_LIKE = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "image/svg+xml",
        "application/manifest+json",
        "application/rss+xml",
        "application/atom+xml",
        "application/yaml",
        "application/toml",
        "application/ld+json",
    }
)


def with_charset(mime: str) -> str:
    """Return *mime* with ``; charset=utf-8`` added when it is a text type without one."""
    if "charset=" in mime:
        return mime
    base = mime.split(";", 1)[0].strip()
    if base.startswith("text/") or base in _TEXT_LIKE:
        return f"{base}; charset=utf-8"
    return mime


# extension -> the Content-Type sent for it, charset and all: a no-op push asks per file
_SENT = {ext: with_charset(mime) for ext, mime in _TYPES.items()}


def by_extension(path: str) -> str | None:
    """Return the Content-Type (charset added) the table gives for the extension of
    *path*'s last segment, or None."""
    _, dot, ext = path.rpartition(".")
    if not dot or "/" in ext:
        return None
    return _SENT.get(ext.lower())


class _Sniffer:
    """One lazily created libmagic handle; libmagic is not thread-safe, hence the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._magic: Any = None
        self._broken = False

    def __call__(self, path: str) -> str | None:
        with self._lock:
            if self._broken:
                return None
            if self._magic is None:
                try:
                    import magic

                    self._magic = magic.Magic(mime=True)
                except Exception:  # no libmagic on this machine: the table must do
                    self._broken = True
                    return None
            try:
                with open(path, "rb") as f:
                    head = f.read(2048)
                found = self._magic.from_buffer(head)
            except Exception:
                return None
        if not isinstance(found, str) or found in ("", "application/x-empty", "inode/x-empty"):
            return None
        return found


_sniff = _Sniffer()


def guess(path: str) -> str:
    """Return the Content-Type for the local file at *path*."""
    return by_extension(path) or with_charset(_sniff(path) or OCTET_STREAM)
