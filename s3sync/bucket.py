"""A bucket (or a prefix of one) that behaves like a dict of key -> Object."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, KeysView, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO

from s3sync import content_type as content_types
from s3sync.errors import NoSuchKey, RemoteError
from s3sync.etags import candidate_part_sizes, parts_of, used_part_size
from s3sync.hashing import hash_file
from s3sync.localtree import LocalTree
from s3sync.model import ObjectInfo
from s3sync.paths import Location, parse_s3_url
from s3sync.store.remote import Connection
from s3sync.usecases import stream
from s3sync.usecases.restore import file_mtime

if TYPE_CHECKING:
    from s3sync.store.remote import S3Store

Data = bytes | str | BinaryIO

_HEADER_NAMES = {
    "cache_control": "CacheControl",
    "content_disposition": "ContentDisposition",
    "content_encoding": "ContentEncoding",
    "content_language": "ContentLanguage",
}


def _no_retry_count(_exc: BaseException) -> None:
    """Retries of the mapping API are not counted anywhere."""


class Object:
    """Data with its user metadata and headers; read from a bucket, its data comes lazily.

    Build one to store: ``Object(b"...", metadata={"k": "v"}, content_type="text/plain")``.
    One read from a bucket knows its size, ETag, LastModified and headers at once; the
    data is fetched on the first ``read``, ``open`` or ``download``.
    """

    def __init__(
        self,
        data: Data | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        cache_control: str | None = None,
        content_disposition: str | None = None,
        content_encoding: str | None = None,
        content_language: str | None = None,
    ) -> None:
        self._data = data
        self.metadata: dict[str, str] = dict(metadata or {})
        self.content_type = content_type
        self.headers = {
            name: value
            for name, value in (
                ("cache_control", cache_control),
                ("content_disposition", content_disposition),
                ("content_encoding", content_encoding),
                ("content_language", content_language),
            )
            if value is not None
        }
        self.size: int | None = None
        self.etag: str | None = None
        self.last_modified: datetime | None = None
        self._store: S3Store | None = None
        self._key: str | None = None

    @classmethod
    def _remote(cls, store: S3Store, key: str, info: ObjectInfo) -> Object:
        names = {v: k for k, v in _HEADER_NAMES.items()}
        found = cls(
            metadata=info.metadata,
            content_type=str(info.headers.get("ContentType") or "") or None,
            **{names[k]: str(v) for k, v in info.headers.items() if k in names},
        )
        found.size, found.etag = info.size, info.etag
        found.last_modified = datetime.fromtimestamp(info.last_modified_ns / 1e9, UTC)
        found._store, found._key = store, key
        return found

    def __repr__(self) -> str:
        return f"<s3sync.Object {self._key or '(local)'} size={self.size} etag={self.etag}>"

    def _bound(self) -> tuple[S3Store, str]:
        if self._store is None or self._key is None:
            raise TypeError("this Object is not in a bucket: read it with bucket[key]")
        return self._store, self._key

    def read(self) -> bytes:
        """Return the data (fetched once, then kept)."""
        if isinstance(self._data, bytes):
            return self._data
        if isinstance(self._data, str):
            return self._data.encode("utf-8")
        if self._data is not None:
            return self._data.read()
        with self.open() as body:
            self._data = body.read()
        return self._data

    def open(self) -> BinaryIO:
        """Return a stream of the data, fetched as it is read; close it when done."""
        store, key = self._bound()
        try:
            return store.open_object(key, on_retry=_no_retry_count)[1]
        except RemoteError as exc:
            raise _missing(exc, key) from None

    def download(self, path: str) -> None:
        """Write the data to the file *path*, atomically, with the object's mtime."""
        store, key = self._bound()
        folder, name = os.path.split(os.path.abspath(path))
        tree = LocalTree(folder)
        try:
            info, body = store.open_object(key, on_retry=_no_retry_count)
        except RemoteError as exc:
            raise _missing(exc, key) from None
        with body:
            chunks = iter(lambda: body.read(1 << 20), b"")
            tree.write(name, chunks, mtime_ns=file_mtime(info), etag=info.etag)
        tree.close()

    def upload(self, path: str) -> None:
        """Replace the object's data with the file at *path*, streamed from disk."""
        store, key = self._bound()
        with open(path, "rb") as source:
            _put(store, key, source, self)


def _missing(exc: RemoteError, key: str) -> Exception:
    if exc.status == 404 or exc.code in ("NoSuchKey", "404", "NotFound"):
        return NoSuchKey(key)
    return exc


def _extra(value: Object | None, guessed: str | None) -> dict[str, object]:
    extra: dict[str, object] = {"Metadata": dict(value.metadata) if value else {}}
    kind = (value.content_type if value else None) or guessed
    extra["ContentType"] = kind or "application/octet-stream"
    if value is not None:
        extra |= {_HEADER_NAMES[k]: v for k, v in value.headers.items()}
    return extra


def _put(store: S3Store, key: str, data: Data, value: Object | None) -> None:
    """Store *data* as *key*: bytes in one request, a stream in parts with bounded memory."""
    extra = _extra(value, content_types.by_extension(key))
    if isinstance(data, str):
        data = data.encode("utf-8")
    if isinstance(data, bytes):
        store.put_bytes(key, data, extra=extra, on_retry=_no_retry_count)
        return
    report = stream.pipe(
        store,
        key,
        data,
        part_size=store.part_size,
        workers=2,
        extra=extra,
        cancel=threading.Event(),
    )
    if report.errors:
        raise RemoteError(report.errors[0].message, code="UploadFailed")


class Bucket(MutableMapping[str, Object]):
    """``s3://bucket/prefix`` as a mutable mapping of key (relative to the prefix) -> Object.

    Iteration pages through the listing lazily; ``len`` lists everything (one request
    per 1,000 keys). A missing key raises ``s3sync.NoSuchKey``, a KeyError.
    """

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        retries: int = 4,
        timeout: float = 60.0,
        part_size: int = 8 * 1024 * 1024,
    ) -> None:
        self.location: Location = parse_s3_url(url)
        connection = Connection(
            endpoint_url=endpoint_url,
            region=region,
            profile=profile,
            retries=retries,
            timeout=timeout,
            workers=4,
            part_size=part_size,
            multipart_threshold=part_size,
        )
        self._store = connection.open(self.location.bucket)

    def __repr__(self) -> str:
        return f"<s3sync.Bucket {self.location}>"

    def close(self) -> None:
        """Release the connection pool and threads."""
        self._store.close()

    def __enter__(self) -> Bucket:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _key(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise NoSuchKey(key)
        return self.location.key(key)

    def __getitem__(self, key: str) -> Object:
        full = self._key(key)
        try:
            info = self._store.head(full, on_retry=_no_retry_count)
        except RemoteError as exc:
            raise _missing(exc, key) from None
        return Object._remote(self._store, full, info)

    def __setitem__(self, key: str, value: Data | Object) -> None:
        full = self._key(key)
        if isinstance(value, Object):
            if value._store is not None and value._data is None:
                value._data = value.read()
            data: Data = value._data if value._data is not None else b""
            _put(self._store, full, data, value)
        else:
            _put(self._store, full, value, None)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise NoSuchKey(key)
        self._store.delete(self._key(key), on_retry=_no_retry_count)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or not key:
            return False
        try:
            self._store.head(self.location.key(key), on_retry=_no_retry_count)
        except RemoteError as exc:
            if isinstance(_missing(exc, key), NoSuchKey):
                return False
            raise
        return True

    def _iter(self, prefix: str) -> Iterator[str]:
        pages = self._store.list_pages(  # lazily: a page is read when wanted
            self.location.prefix + prefix, on_retry=_no_retry_count, fan_out=False
        )
        for page in pages:
            for full, _stat in page:
                yield full[len(self.location.prefix) :]

    def __iter__(self) -> Iterator[str]:
        return self._iter("")

    def __len__(self) -> int:
        return sum(1 for _ in self._iter(""))

    def keys(self, prefix: str = "") -> KeysView[str]:
        """Return the keys (under *prefix*, itself relative to the bucket's prefix)."""
        return _Keys(self, prefix)

    def url(self, key: str, expires: int = 3600) -> str:
        """Return a presigned URL that GETs *key* without credentials for *expires* seconds."""
        return self._store.presign(self._key(key), expires)

    def sync_file(self, key: str, path: str) -> str:
        """Keep *key* and the local file *path* alike, the file being the master.

        Uploads when the file's MD5 (computed streaming) differs from the object's ETag
        or the key is missing; downloads when the file does not exist. Returns what it
        did: ``"uploaded"``, ``"downloaded"`` or ``"unchanged"``.
        """
        if not os.path.exists(path):
            self[key].download(path)
            return "downloaded"
        try:
            current: Object | None = self[key]
        except NoSuchKey:
            current = None
        if current is not None and current.etag is not None:
            size = os.path.getsize(path)
            preferred = [used_part_size(size, self._store.part_size)]
            recorded = current.metadata.get("partsize", "")
            if recorded.isdigit():
                preferred.insert(0, int(recorded))
            sizes = candidate_part_sizes(size, parts_of(current.etag), preferred)
            hasher, _ = hash_file(path, sizes)
            known = [hasher.single(), *(hasher.multipart(s) for s in sizes)]
            if current.etag in known:
                return "unchanged"
        with open(path, "rb") as source:
            _put(self._store, self._key(key), source, current)
        return "uploaded"


class _Keys(KeysView[str]):
    """The keys of a Bucket under a prefix, listed lazily."""

    def __init__(self, bucket: Bucket, prefix: str) -> None:
        super().__init__(bucket)
        self._bucket = bucket
        self._prefix = prefix

    def __iter__(self) -> Iterator[str]:
        return self._bucket._iter(self._prefix)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.startswith(self._prefix) and key in self._bucket
