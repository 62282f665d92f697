"""The object store: the only module that imports boto3 or botocore.

It imports them on the first request, not on import: a run that needs no request (a
no-op push with an index) never pays the third of a second they take to load. Every
botocore failure leaves this module as a RemoteError with a one-line message that
names the bucket and endpoint, so ``errors.classify`` never sees botocore types. Each
method retries its own requests through the injected Retrier, re-reading from disk on
every attempt.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, Protocol, TypeVar, cast
from urllib.parse import urlsplit

from s3sync.errors import ConfigError, Disposition, RemoteError, classify
from s3sync.etags import multipart_etag, used_part_size
from s3sync.model import MAX_REQUESTS, ObjectInfo, Stat
from s3sync.paths import endpoint_shown
from s3sync.retry import Retrier, RetryPolicy
from s3sync.store.crt import Answer, Built, Credentials, CrtClient, CrtFailure, combine_crc32
from s3sync.store.crt import available as crt_available
from s3sync.store.fanout import Listed, Page, fanned
from s3sync.store.listing import NotAListing, parse_page
from s3sync.store.protocol import KEPT_HEADERS, DigestMismatch, check_stored_crc32, crc32_text
from s3sync.window import Window, throttled

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    import boto3
    from botocore.config import Config
    from mypy_boto3_s3 import S3Client

    from s3sync.store.protocol import BotocoreProtocol

T = TypeVar("T")
OnRetry = Callable[[BaseException], None]
MAX_PARTS = 10_000
CHUNK = 1024 * 1024
DELETE_BATCH = 1000
SMALL_OBJECT = 64 * 1024  # what get_bytes reads at most: a lease is a few hundred bytes
LATER_BYTES = 64 * 1024 * 1024  # of bodies put_later holds in memory at once
LISTING_WAYS = 8  # directories of a prefix listed at once
PAGE_KEYS = 1000  # S3's most, and its default
# what a multipart upload asks for to end with the CRC32 of the whole object, as a
# PutObject's; and the answers of a server that takes no such request
FULL_CRC32: dict[str, Any] = {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"}
_NO_CHECKSUMS = frozenset({"InvalidArgument", "InvalidRequest", "NotImplemented"})


class CopySource(NamedTuple):
    """An object to copy from: its bucket and key on the store's own endpoint, and the
    ETag of the version to copy (each request is conditioned on it: a source rewritten
    during the copy fails it, PreconditionFailed, instead of mixing two versions)."""

    bucket: str
    key: str
    etag: str | None = None

    def conditions(self) -> dict[str, str]:
        """Return the CopyObject/UploadPartCopy arguments that pin the version."""
        return {"CopySourceIfMatch": self.etag} if self.etag else {}


class Source(Protocol):
    """One version of a local file (``snapshot.Snapshot``): reads raise when it changes."""

    @property
    def stat(self) -> Stat:
        """The size and mtime of the version being read."""
        ...

    def read(self, offset: int, length: int) -> bytes:
        """Return *length* bytes from *offset*."""
        ...

    def read_all(self) -> bytes:
        """Return the whole file, checked to be one version."""
        ...

    def verify(self) -> None:
        """Raise unless the file is still the version being read."""
        ...


class ObjectStore(Protocol):
    """What the use cases need from S3, for one bucket."""

    @property
    def endpoint(self) -> str:
        """The endpoint URL requests go to, as messages and an index show it."""
        ...

    @property
    def window(self) -> Window:
        """The requests a run keeps in flight: throttling answers narrow it."""
        ...

    def list_pages(
        self, prefix: str, *, on_retry: OnRetry, fan_out: bool = True
    ) -> Iterator[list[tuple[str, Stat]]]:
        """Yield the objects under *prefix*, one listing page at a time; without
        *fan_out*, one request after the other (a page read only when wanted)."""
        ...

    def put_file(
        self,
        key: str,
        source: Source,
        *,
        headers: Mapping[str, str],
        metadata: Mapping[str, str],
        on_retry: OnRetry,
        failed: RemoteError | None = None,
    ) -> str:
        """Upload the version of the file *source* holds with *headers* (boto3 arguments:
        ContentType, CacheControl, ...) and user *metadata*; return the new ETag. Raise
        SourceChanged, storing nothing, when the file changed while being read. *failed*
        is how an attempt through ``put_later`` failed: this one is its retry."""
        ...

    def put_bytes(
        self,
        key: str,
        body: bytes | bytearray,
        *,
        extra: Mapping[str, Any] | None = None,
        if_none_match: bool = False,
        if_match: str | None = None,
        on_retry: OnRetry | None = None,
    ) -> str | None:
        """Store *body* as *key* in one request; return the ETag, or None if a condition
        refused it (412)."""
        ...

    def can_put_later(self, size: int) -> bool:
        """Return whether ``put_later`` can store *size* bytes."""
        ...

    def put_later(
        self,
        key: str,
        body: bytes,
        *,
        headers: Mapping[str, str],
        metadata: Mapping[str, str],
        finished: Callable[[str | RemoteError], None],
        post: Callable[[Callable[[], object]], None],
    ) -> None:
        """Start storing *body* (one version of a file, read and verified) as *key* with
        *headers* and *metadata* as ``put_file`` does, in one attempt, when
        ``can_put_later``: at the end, another thread hands *post* a call of *finished*
        with the new ETag or the failure."""
        ...

    def head(self, key: str, *, on_retry: OnRetry) -> ObjectInfo:
        """Return what a HEAD request tells of *key*."""
        ...

    def download(
        self,
        key: str,
        write: Callable[[ObjectInfo, Iterator[bytes]], T],
        *,
        on_retry: OnRetry,
        size: int | None = None,
        failed: RemoteError | None = None,
    ) -> T:
        """GET *key* and return ``write(info, chunks)``; a broken stream retries it all.
        *failed* is how an attempt through ``download_to_file`` failed: this one is its
        retry."""
        ...

    def download_to_file(
        self,
        key: str,
        path: str,
        size: int,
        finished: Callable[[ObjectInfo | RemoteError], None],
        post: Callable[[Callable[[], object]], None],
    ) -> bool:
        """Start writing *key* (listed with *size* bytes) into the file *path*, in one
        attempt, and return True: at the end, another thread hands *post* a call of
        *finished* with what the GET told (its size is the answer's) or the failure.
        Return False, starting nothing, when this store cannot for this object: use
        ``download``."""
        ...

    def get_bytes(self, key: str) -> tuple[bytes, str] | None:
        """Return a small object's body and ETag, or None when there is no such key."""
        ...

    def delete_if_match(self, key: str, etag: str) -> bool:
        """Delete *key* if its ETag is still *etag*; return whether it was deleted."""
        ...

    def delete_many(self, keys: Sequence[str], *, on_retry: OnRetry) -> list[tuple[str, str]]:
        """Delete *keys*; return ``(key, message)`` for each one that failed."""
        ...

    def copy_object(
        self,
        source: CopySource,
        key: str,
        *,
        info: ObjectInfo | None,
        extra_metadata: Mapping[str, str],
        on_retry: OnRetry,
    ) -> str:
        """Copy *source* to *key* server-side, keeping its headers; return the new ETag."""
        ...

    def copy_parts(
        self,
        source: CopySource,
        key: str,
        *,
        info: ObjectInfo,
        extra_metadata: Mapping[str, str],
        on_retry: OnRetry,
    ) -> str:
        """Copy *source* to *key* server-side in parallel parts."""
        ...

    def replace_headers(
        self,
        key: str,
        headers: Mapping[str, str],
        metadata: Mapping[str, str],
        *,
        on_retry: OnRetry,
    ) -> str:
        """Give *key* exactly *headers* and *metadata* in place; return the new ETag."""
        ...

    def get_range(
        self, key: str, first: int, last: int, *, on_retry: OnRetry, if_match: str | None = None
    ) -> bytes:
        """Return bytes *first* to *last* (inclusive) of *key* (of the version whose ETag
        is *if_match*: another version fails, PreconditionFailed)."""
        ...

    def first_part_size(self, key: str) -> int | None:
        """Return the size of the first part *key* was uploaded in, None when it was not
        multipart or the server does not tell (best effort, one HEAD)."""
        ...

    def put_from(
        self,
        key: str,
        *,
        info: ObjectInfo,
        read: Callable[[int, int], bytes],
        extra_metadata: Mapping[str, str],
        on_retry: OnRetry,
    ) -> str:
        """Store an object read range by range with *read*, keeping *info*'s headers."""
        ...

    def close(self) -> None:
        """Release threads and connections."""
        ...


def make_client(
    *,
    session: boto3.session.Session | None = None,
    endpoint_url: str | None,
    region: str | None,
    profile: str | None,
    connections: int,
    timeout: float = 60.0,
    verify: bool | str | None = None,
) -> S3Client:
    """Return an S3 client that never retries on its own (s3sync retries, and counts),
    and checks every upload and answer (``protocol.guard``). *verify* is botocore's:
    None for the CA bundle AWS's settings name (else the system's), False for none."""
    from s3sync.store import protocol

    session = session or _session(profile)
    region = _region(region, session)
    config = client_config(endpoint_url, connections, timeout)
    try:
        client = session.client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config, verify=verify
        )
    except ValueError as exc:
        shown = endpoint_shown(endpoint_url or "")
        raise ConfigError(f"bad endpoint URL '{shown}': {exc}") from None
    protocol.guard(client)
    return client


def client_config(endpoint_url: str | None, connections: int, timeout: float) -> Config:
    """Return the botocore Config of s3sync's S3 clients: no retries of botocore's own,
    path-style addressing for an endpoint given on the command line."""
    from botocore.config import Config

    return Config(
        retries={"total_max_attempts": 1},
        max_pool_connections=connections,
        connect_timeout=min(10.0, timeout),
        read_timeout=timeout,
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def ca_bundle(session: boto3.session.Session, *, verify: bool) -> bool | str | None:
    """Return botocore's *verify* for a run: False when asked not to verify, else the CA
    bundle ``AWS_CA_BUNDLE`` or the profile's ``ca_bundle`` names (None: the system's)."""
    if not verify:
        return False
    found = session._session.get_config_variable("ca_bundle")
    return str(found) if found else None


def _region(region: str | None, session: boto3.session.Session) -> str:
    """Return the region a client made by make_client would sign for, without making
    one (raising ConfigError for a name botocore would refuse)."""
    chosen = region or session.region_name or "us-east-1"
    _check_region(chosen)
    return chosen


_REGION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?")  # botocore's rule


def _check_region(region: str) -> None:
    """Raise ConfigError unless *region* is a name botocore accepts."""
    if not _REGION.fullmatch(region):
        raise ConfigError(f"bad region '{region}': use a name like eu-west-1")


def _current_credentials(session: boto3.session.Session) -> Credentials | None:
    """Return what reads the session's credentials as they are now (refreshed when they
    expire), or None when it has none."""
    credentials = session.get_credentials()
    if credentials is None:
        return None

    def current() -> tuple[str, str, str | None]:
        frozen = credentials.get_frozen_credentials()
        return frozen.access_key or "", frozen.secret_key or "", frozen.token

    return current


def _check_endpoint(url: str) -> None:
    """Raise ConfigError unless *url* is an http(s) URL with a host (as botocore checks,
    without loading it)."""
    try:
        parts = urlsplit(url)
        usable = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        usable = usable and (parts.port or 0) >= 0  # reading the port checks its range
    except ValueError:  # a bad port or IPv6 address
        usable = False
    if not usable:
        raise ConfigError(f"bad endpoint URL '{url}': use http://HOST[:PORT] or https://…")


def _session(profile: str | None) -> boto3.session.Session:
    import boto3
    import botocore.exceptions as bce

    try:
        return boto3.session.Session(profile_name=profile)
    except bce.ProfileNotFound:
        raise ConfigError(f"AWS profile '{profile}' is not configured") from None


_FATAL_MESSAGES = {
    "NoSuchBucket": "bucket '{bucket}' does not exist at {endpoint}: create it or fix the URL",
    "AccessDenied": "access denied to bucket '{bucket}' at {endpoint}: check the credentials",
    "InvalidAccessKeyId": "the access key is not known at {endpoint}: check the credentials",
    "SignatureDoesNotMatch": "the secret key is wrong for {endpoint}: check the credentials",
    "ExpiredToken": "the credentials have expired: renew them",
    "InvalidToken": "the session token is invalid: renew the credentials",
    "NoCredentials": "no AWS credentials found: set AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, or use --profile",
    "ConnectionError": "cannot connect to {endpoint}: is the server up, is --endpoint-url right?",
    "ConnectionRefused": "{endpoint} refused the connection: is the server up, "
    "is --endpoint-url right?",
    "DNSFailure": "the name of {endpoint} does not resolve: is --endpoint-url right?",
    "TLSError": "TLS with {endpoint} failed: certificate verification failed or no TLS there "
    "({ca}; set AWS_CA_BUNDLE, or --no-verify-ssl)",
    "NotS3": "{endpoint} did not answer like S3: check --endpoint-url",
    "PermanentRedirect": "bucket '{bucket}' is in another region: set --region",
    "BadRequest": "{endpoint} refused the request as malformed: check the credentials and --region",
    "AuthorizationHeaderMalformed": "bucket '{bucket}' is in another region: set --region",
}


def _also(first: OnRetry, then: OnRetry) -> OnRetry:
    """Return an on_retry callback that calls *first*, then *then*."""

    def both(exc: BaseException) -> None:
        first(exc)
        then(exc)

    return both


class Part(NamedTuple):
    """One part of a multipart upload: its ETag, and the CRC32 and size of its bytes
    (unknown for a part copied server-side)."""

    etag: str
    crc32: int = 0
    size: int = 0


class Fast(NamedTuple):
    """Small requests through awscrt: botocore builds and reads them, the runtime sends."""

    crt: CrtClient
    protocol: BotocoreProtocol


class Clients(NamedTuple):
    """The clients a store sends through: what returns boto3's (made on its first call,
    the same client every time), and awscrt's when it is there; *ca* names the CA
    bundle used, for messages."""

    s3: Callable[[], S3Client]
    fast: Fast | None
    ca: str = "the system's CA store"


def once(make: Callable[[], T]) -> Callable[[], T]:
    """Return what calls *make* the first time it is called, from any thread, and then
    returns that first result."""
    made: list[T] = []
    lock = threading.Lock()

    def get() -> T:
        if not made:
            with lock:
                if not made:
                    made.append(make())
        return made[0]

    return get


class S3Store:
    """ObjectStore on one shared boto3 client; multipart parts run on their own pool.

    The clients are made by *connect* on the first request (or the first read of
    ``endpoint`` when *endpoint* is not given): loading boto3 and building a client cost
    half a second of CPU that a run with nothing to send never spends.
    """

    def __init__(
        self,
        connect: Callable[[], Clients],
        bucket: str,
        *,
        endpoint: str | None,
        retrier: Retrier,
        multipart_threshold: int = 8 * 1024 * 1024,
        part_size: int = 8 * 1024 * 1024,
        part_workers: int = 4,
        window: Window | None = None,
    ) -> None:
        self._connect = connect
        self.window = window or Window(MAX_REQUESTS)  # what the run keeps in flight
        self._clients: Clients | None = None
        self._connecting = threading.Lock()
        self._endpoint = endpoint
        self.bucket = bucket
        self._retry = retrier
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self._part_workers = part_workers
        self._parts: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._held = 0  # bytes of bodies put_later holds until their requests end
        self.listing_ways = LISTING_WAYS  # directories listed at once
        self.page_keys = PAGE_KEYS  # keys a listing page asks for
        self._full_crc32 = True  # until the server refuses a full-object checksum
        self._checked_uploads: set[str] = set()  # upload ids started with one

    def _ready(self) -> Clients:
        clients = self._clients
        if clients is None:
            with self._connecting:
                if self._clients is None:
                    try:
                        self._clients = self._connect()
                    except ConfigError as exc:  # in a worker: it must stop the run
                        raise RemoteError(str(exc), code="BadConfig") from None
                clients = self._clients
        return clients

    @property
    def client(self) -> S3Client:
        """boto3's client (made now if it was not yet)."""
        make = self._ready().s3
        try:
            return make()
        except ConfigError as exc:  # in a worker: it must stop the run
            raise RemoteError(str(exc), code="BadConfig") from None

    @property
    def _fast(self) -> Fast | None:  # small requests through awscrt, when it is there
        return self._ready().fast

    @property
    def endpoint(self) -> str:
        """The endpoint URL requests go to, as messages and an index show it (no
        password, no trailing slash: ``paths.endpoint_shown``)."""
        return endpoint_shown(self._endpoint or self.client.meta.endpoint_url)

    def _error(self, exc: BaseException, doing: str) -> RemoteError:
        import botocore.exceptions as bce
        from botocore.parsers import ResponseParserError

        code, status, detail = "Error", None, str(exc)
        region: str | None = None
        if isinstance(exc, bce.ClientError):
            err = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = str(err.get("Code") or status or "Error")
            detail = str(err.get("Message") or code)
            if code in ("301", "PermanentRedirect"):  # a HEAD's answer has no body
                code = "PermanentRedirect"
                region = _region_told(exc.response)
            elif code == "404" and "Bucket" in doing:
                code = "NoSuchBucket"
            elif code in ("403", "Forbidden"):
                code = "AccessDenied"
            elif code in ("400", "Bad Request"):  # a HEAD answer has no body to say why
                code = "BadRequest"
        elif isinstance(exc, bce.SSLError):
            code = "TLSError"
        elif isinstance(exc, (bce.EndpointConnectionError, bce.ConnectTimeoutError)):
            code = _connection_code(exc)
        elif isinstance(exc, bce.ReadTimeoutError):
            code = "ReadTimeout"
        elif isinstance(exc, (bce.ConnectionClosedError, bce.ResponseStreamingError)):
            code = "ConnectionError"
        elif isinstance(exc, bce.FlexibleChecksumError):
            code = "BadDigest"
        elif isinstance(exc, bce.IncompleteReadError):
            code = "IncompleteRead"
        elif isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError)):
            code = "NoCredentials"
        elif isinstance(exc, ResponseParserError):
            code = "NotS3"
        elif isinstance(exc, DigestMismatch):
            code = "BadDigest"
        elif isinstance(exc, CrtFailure):
            code, status, detail = exc.code, exc.status, exc.detail
            if code in ("301", "PermanentRedirect"):
                code = "PermanentRedirect"
            elif code in ("403", "Forbidden"):
                code = "AccessDenied"
            elif code == "400":
                code = "BadRequest"
        elif isinstance(exc, (bce.HTTPClientError, bce.ConnectionError)):
            code = "ConnectionError"
        template = _FATAL_MESSAGES.get(code)
        if region is not None:
            message = f"bucket '{self.bucket}' is in region {region}: set --region {region}"
        elif template is not None:
            ca = self._clients.ca if self._clients is not None else "the system's CA store"
            message = template.format(bucket=self.bucket, endpoint=self.endpoint, ca=ca)
        else:
            message = f"{doing} failed: {detail} ({code})"
        return RemoteError(" ".join(message.split()), code=code, status=status)

    def _call(
        self,
        doing: str,
        fn: Callable[[], T],
        on_retry: OnRetry | None,
        failed: RemoteError | None = None,
    ) -> T:
        def attempt() -> T:
            try:
                return fn()
            except Exception as exc:
                raise self._told(exc, doing) from exc

        return self._retry(attempt, on_retry, failed)

    def _told(self, exc: Exception, doing: str) -> RemoteError:
        """Return the RemoteError a request's failure *exc* is told as (after deleting
        what a mismatched upload stored; a throttling answer narrows the window of
        requests in flight); raise *exc* itself when it is no failure of a request (a
        bug)."""
        if isinstance(exc, DigestMismatch):
            self._drop_corrupt(exc)
        elif not (isinstance(exc, CrtFailure) or _from_botocore(exc)):
            raise exc
        error = self._error(exc, doing)
        if throttled(error):
            self.window.slow_down()
        return error

    def _drop_corrupt(self, mismatch: DigestMismatch) -> None:
        """Delete the object an upload stored with the wrong bytes, if it is still that
        one (best effort: its retry overwrites it anyway), so that no run ever takes it
        for good. A download that mismatched (no key) stored nothing."""
        if not mismatch.key or not mismatch.etag:
            return
        with contextlib.suppress(Exception):
            self.client.delete_object(Bucket=self.bucket, Key=mismatch.key, IfMatch=mismatch.etag)

    def list_pages(
        self, prefix: str, *, on_retry: OnRetry, fan_out: bool = True
    ) -> Iterator[list[tuple[str, Stat]]]:
        """Yield the objects under *prefix* a ListObjectsV2 page at a time, in key order,
        listing up to ``listing_ways`` of its directories at once (``fanout``) unless not
        to *fan_out*; through awscrt and a lean parser when it is there (botocore's
        costs ten times the CPU)."""

        def chain(under: str, delimiter: str | None) -> Iterator[Listed]:
            return self._chain(under, delimiter, on_retry)

        if self.listing_ways < 2 or not fan_out:
            return (listed.objects for listed in chain(prefix, None))
        return fanned(chain, prefix, ways=self.listing_ways)

    def _chain(self, prefix: str, delimiter: str | None, on_retry: OnRetry) -> Iterator[Listed]:
        """Yield the pages of one ListObjectsV2 listing."""
        page = self._botocore_page if self._fast is None else self._lean_page
        token: str | None = None
        while True:
            objects, prefixes, token = self._call(
                f"listing bucket '{self.bucket}'",
                lambda after=token: page(prefix, delimiter, after),  # type: ignore[misc]
                on_retry,
            )
            yield Listed(objects, prefixes, token is not None)
            if token is None:
                return

    def _lean_page(
        self, prefix: str, delimiter: str | None, token: str | None
    ) -> tuple[Page, list[str], str | None]:
        fast = self._fast
        assert fast is not None
        params = self._listing_params(prefix, delimiter, token)
        params["EncodingType"] = "url"
        built, _ = fast.protocol.request("list_objects_v2", **params)
        answer = fast.crt.send("ListObjectsV2", built, size=0, keep_body=True)
        if answer.status is None or answer.status >= 300:
            fast.protocol.answer("ListObjectsV2", answer)  # raises what it was
        try:
            parsed = parse_page(answer.body)
        except NotAListing as exc:
            raise CrtFailure("NotS3", answer.status, str(exc)) from None
        token = next_page(self.bucket, parsed.truncated, parsed.next_token)
        return parsed.objects, parsed.prefixes, token

    def _botocore_page(
        self, prefix: str, delimiter: str | None, token: str | None
    ) -> tuple[Page, list[str], str | None]:
        page = self.client.list_objects_v2(**self._listing_params(prefix, delimiter, token))
        objects = [
            (
                obj["Key"],
                Stat(obj["Size"], int(obj["LastModified"].timestamp()) * 10**9, obj.get("ETag")),
            )
            for obj in page.get("Contents", ())
        ]
        prefixes = [str(p["Prefix"]) for p in page.get("CommonPrefixes", ())]
        truncated = bool(page.get("IsTruncated"))
        token = next_page(self.bucket, truncated, page.get("NextContinuationToken"))
        return objects, prefixes, token

    def _listing_params(self, prefix: str, delimiter: str | None, token: str | None) -> Any:
        """Return the parameters of a ListObjectsV2 request."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            params["Delimiter"] = delimiter
        if token:
            params["ContinuationToken"] = token
        if self.page_keys != PAGE_KEYS:
            params["MaxKeys"] = self.page_keys
        return params

    def put_file(
        self,
        key: str,
        source: Source,
        *,
        headers: Mapping[str, str],
        metadata: Mapping[str, str],
        on_retry: OnRetry,
        failed: RemoteError | None = None,
    ) -> str:
        """Upload *source* as *key*: one PutObject of bytes read and verified before they
        are sent, or above the threshold a multipart upload verified before it is
        completed (aborted, leaving nothing, when the file changed)."""
        size = source.stat.size
        if size >= self.multipart_threshold:
            if failed is not None:  # it grew past the threshold since: a new upload
                on_retry(failed)
            # the part size lets checksum mode recompute this ETag when the listing is not enough
            parted = {**metadata, "partsize": str(used_part_size(size, self.part_size))}
            return self._put_multipart(key, source, {**headers, "Metadata": parted}, on_retry)
        body = source.read_all()
        fast = self._fast
        if fast is not None:
            return self._call(
                f"upload of '{key}'",
                lambda: self._put_through(fast, key, bytes(body), headers, metadata),
                on_retry,
                failed,
            )
        extra: dict[str, Any] = {**headers, "Metadata": dict(metadata)}
        answer = self._call(
            f"upload of '{key}'",
            lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra),
            on_retry,
            failed,
        )
        return str(answer.get("ETag", ""))

    def _put_through(self, fast: Fast, key: str, *request: Any) -> str:
        """Store an object through awscrt, in one PutObject (see ``_put_request``);
        return its ETag, checked."""
        built, md5 = self._put_request(fast, key, *request)
        answer = fast.crt.send("PutObject", built, size=len(built.body or b""))
        return _put_answer(fast, key, answer, md5)

    def _put_request(
        self,
        fast: Fast,
        key: str,
        body: bytes,
        headers: Mapping[str, str],
        metadata: Mapping[str, str],
    ) -> tuple[Built, str | None]:
        """Return the PutObject of *body* as *key* botocore builds, and its MD5."""
        return fast.protocol.request(
            "put_object", Bucket=self.bucket, Key=key, Body=body, Metadata=dict(metadata), **headers
        )

    def put_bytes(
        self,
        key: str,
        body: bytes | bytearray,
        *,
        extra: Mapping[str, Any] | None = None,
        if_none_match: bool = False,
        if_match: str | None = None,
        on_retry: OnRetry | None = None,
    ) -> str | None:
        """Store *body* as *key* in one request, with *extra* headers and, when asked,
        only if absent or only if its ETag is *if_match*; return the new ETag, or None
        when a condition refused the write (412)."""
        kwargs: dict[str, Any] = dict(extra or {})
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        try:
            answer = self._call(
                f"upload of '{key}'",
                lambda: self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=cast(bytes, body),  # botocore sends a bytearray as is: no copy
                    **kwargs,
                ),
                on_retry,
            )
        except RemoteError as exc:
            refused = exc.status == 412 or exc.code in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            )
            if refused and (if_none_match or if_match is not None):
                return None
            raise
        return _quoted(str(answer.get("ETag", "")))

    def head(self, key: str, *, on_retry: OnRetry) -> ObjectInfo:
        """Return what a HEAD request tells of *key*."""
        answer = self._call(
            f"HEAD of '{key}'",
            lambda: self.client.head_object(Bucket=self.bucket, Key=key),
            on_retry,
        )
        return _info(answer)

    def download(
        self,
        key: str,
        write: Callable[[ObjectInfo, Iterator[bytes]], T],
        *,
        on_retry: OnRetry,
        size: int | None = None,
        failed: RemoteError | None = None,
    ) -> T:
        """GET *key* and return ``write(info, chunks)``; a broken stream retries it all.
        A small object (*size*, as listed, under the multipart threshold) comes in one
        piece through awscrt, when it is there."""
        fast = self._fast
        # an empty one through botocore: nothing to gain from the runtime
        if fast is not None and size and size < self.multipart_threshold:

            def whole() -> T:
                built, _ = fast.protocol.request("get_object", **self._checked_get(key))
                answer = fast.crt.send("GetObject", built, size=size, keep_body=True)
                parsed = fast.protocol.answer("GetObject", answer)
                check_stored_crc32(parsed, (answer.body,))
                info = _info(parsed)
                return write(info._replace(size=len(answer.body)), iter((answer.body,)))

            return self._call(f"download of '{key}'", whole, on_retry, failed)

        def attempt() -> T:
            answer = self.client.get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
            body = answer["Body"]
            try:
                return write(_info(answer), body.iter_chunks(CHUNK))
            finally:
                body.close()

        return self._call(f"download of '{key}'", attempt, on_retry, failed)

    def _checked_get(self, key: str) -> dict[str, str]:
        """Return the parameters of a GET of *key* that asks for its stored checksum."""
        return {"Bucket": self.bucket, "Key": key, "ChecksumMode": "ENABLED"}

    def can_put_later(self, size: int) -> bool:
        """Return whether *size* bytes can go through awscrt in one PutObject: when it is
        there, below the multipart threshold, and the bodies in flight leave room (they
        are in memory until their requests end: a worker reads a file when they do not)."""
        return (
            size < self.multipart_threshold
            and self._fast is not None
            and self._held + size <= LATER_BYTES
        )

    def put_later(
        self,
        key: str,
        body: bytes,
        *,
        headers: Mapping[str, str],
        metadata: Mapping[str, str],
        finished: Callable[[str | RemoteError], None],
        post: Callable[[Callable[[], object]], None],
    ) -> None:
        """Start a PutObject of *body* through awscrt; see ObjectStore."""
        fast = self._fast
        assert fast is not None, "only when can_put_later"
        doing = f"upload of '{key}'"
        try:
            built, md5 = self._put_request(fast, key, body, headers, metadata)
        except Exception as exc:  # botocore refused the parameters: told as any failure
            if not _from_botocore(exc):
                raise
            error = self._error(exc, doing)
            post(lambda: finished(error))
            return

        def told(answer: Answer) -> None:
            with self._lock:
                self._held -= len(body)
            try:
                etag = _put_answer(fast, key, answer, md5)
            except Exception as exc:
                finished(self._told(exc, doing))
            else:
                finished(etag)

        with self._lock:
            self._held += len(body)
        fast.crt.start("PutObject", built, size=len(body), done=lambda a: post(lambda: told(a)))

    def download_to_file(
        self,
        key: str,
        path: str,
        size: int,
        finished: Callable[[ObjectInfo | RemoteError], None],
        post: Callable[[Callable[[], object]], None],
    ) -> bool:
        """Start a GET of *key* into *path* off the workers; see ObjectStore. Only small,
        non-empty objects go this way, through awscrt when it is there; the file written
        is read back and checked against the object's stored CRC32."""
        fast = self._fast
        if fast is None or not 0 < size < self.multipart_threshold:
            return False
        doing = f"download of '{key}'"
        built, _ = fast.protocol.request("get_object", **self._checked_get(key))

        def told(answer: Answer) -> None:
            try:
                parsed = fast.protocol.answer("GetObject", answer)
                with open(path, "rb") as written:  # small: under the multipart threshold
                    check_stored_crc32(parsed, iter(lambda: written.read(CHUNK), b""))
                info = _info(parsed)
            except OSError as exc:  # the file written cannot be read back
                finished(self._error(exc, doing))
            except Exception as exc:
                finished(self._told(exc, doing))
            else:
                finished(info)

        fast.crt.start(
            "GetObject", built, size=size, recv_path=path, done=lambda a: post(lambda: told(a))
        )
        return True

    def get_bytes(self, key: str) -> tuple[bytes, str] | None:
        """Return a small object's body (its first SMALL_OBJECT bytes) and ETag, or None
        when there is no such key."""

        def get() -> tuple[bytes, str]:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            with contextlib.closing(answer["Body"]) as body:  # the rest is never read
                return body.read(SMALL_OBJECT), answer.get("ETag", "")

        try:
            return self._call(f"read of '{key}'", get, None)
        except RemoteError as exc:
            if exc.code in ("NoSuchKey", "404") or exc.status == 404:
                return None
            raise

    def delete_if_match(self, key: str, etag: str) -> bool:
        """Delete *key* if its ETag is still *etag*; return whether it was deleted."""
        try:
            self._call(
                f"delete of '{key}'",
                lambda: self.client.delete_object(Bucket=self.bucket, Key=key, IfMatch=etag),
                None,
            )
        except RemoteError as exc:
            if exc.status in (404, 412):
                return False
            raise
        return True

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._parts is None:
                from concurrent.futures import ThreadPoolExecutor  # not for a run without parts

                self._parts = ThreadPoolExecutor(
                    self._part_workers, thread_name_prefix="s3sync-part"
                )
            return self._parts

    def _put_multipart(
        self, key: str, source: Source, extra: dict[str, Any], on_retry: OnRetry
    ) -> str:
        size = source.stat.size
        part_size = used_part_size(size, self.part_size)
        ranges = [(o, min(o + part_size, size) - 1) for o in range(0, max(size, 1), part_size)]

        def part(upload_id: str, number: int, first: int, last: int) -> Part:
            body = source.read(first, last - first + 1)
            return self.upload_part(key, upload_id, number, body, on_retry=on_retry)

        return self._multipart(key, extra, ranges, part, on_retry, verify=source.verify)

    def _multipart(
        self,
        key: str,
        extra: Mapping[str, Any],
        ranges: Sequence[tuple[int, int]],
        part: Callable[[str, int, int, int], Part],
        on_retry: OnRetry,
        *,
        verify: Callable[[], None] | None = None,
        checksum: bool = True,
    ) -> str:
        """Run one multipart upload: ``part(upload_id, number, first, last)`` per byte range
        on the part pool, ``verify()`` once every part is in, then complete it; on any
        failure abort it, leaving no parts. Unfinished uploads of the same key (a run
        killed outright) are aborted first, so none is left dangling. With *checksum*
        the object gets a full-object CRC32 where the server keeps one (see
        ``start_upload``)."""
        self.abort_unfinished(key)
        create_retries: list[BaseException] = []
        upload_id = self.start_upload(
            key, extra, on_retry=_also(create_retries.append, on_retry), checksum=checksum
        )
        pool = self._pool()
        futures: list[Future[Part]] = [
            pool.submit(part, upload_id, n + 1, first, last)
            for n, (first, last) in enumerate(ranges)
        ]
        try:
            parts = [f.result() for f in futures]
            if verify is not None:
                verify()
            etag = self.finish_upload(key, upload_id, parts, on_retry=on_retry)
        except BaseException:
            for f in futures:
                f.cancel()
            for f in futures:
                if not f.cancelled():
                    f.exception()
            self.abort(key, upload_id)
            raise
        finally:
            if create_retries:  # a create whose answer was lost may have left an upload
                self.abort_unfinished(key)
        return etag

    def finish_upload(
        self, key: str, upload_id: str, parts: Sequence[Part], *, on_retry: OnRetry
    ) -> str:
        """Complete an upload from its parts, in order; return the object's ETag. An
        upload started with a checksum gets the CRC32 of the whole object, made from the
        parts' own: the server checks it against the bytes it has.

        When an attempt completed it but its answer was lost, the retry finds no such
        upload: then the object itself says whether it is the one these parts make.
        """
        etags = [p.etag for p in parts]
        listed: list[dict[str, Any]] = [
            {"PartNumber": n + 1, "ETag": p.etag} for n, p in enumerate(parts)
        ]
        whole: dict[str, str] = {}
        if upload_id in self._checked_uploads:
            for entry, p in zip(listed, parts, strict=True):
                entry["ChecksumCRC32"] = crc32_text(p.crc32)
            combined = combine_crc32([(p.crc32, p.size) for p in parts])
            whole = {"ChecksumCRC32": crc32_text(combined), "ChecksumType": "FULL_OBJECT"}
        retries: list[BaseException] = []
        try:
            done = self._call(
                f"multipart upload of '{key}'",
                lambda: self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": listed},  # type: ignore[typeddict-item]
                    **whole,  # type: ignore[arg-type]
                ),
                _also(retries.append, on_retry),
            )
        except RemoteError as exc:
            expected = multipart_etag(etags)
            if not retries or exc.code != "NoSuchUpload" or expected is None:
                raise
            if self.head(key, on_retry=on_retry).etag != expected:
                raise
            return expected
        return _quoted(str(done.get("ETag", "")))

    def abort_unfinished(self, key: str) -> None:
        """Abort every unfinished multipart upload of *key*; best effort (a policy may
        deny listing them, a server may not have the call)."""
        with contextlib.suppress(RemoteError):
            for leftover in self.unfinished_uploads(key):
                self.abort(key, leftover)

    def abort(self, key: str, upload_id: str) -> None:
        """Abort a multipart upload so no parts are left behind; best effort."""
        with contextlib.suppress(RemoteError):
            self._call(
                f"abort of the multipart upload of '{key}'",
                lambda: self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id
                ),
                None,
            )

    def delete_many(self, keys: Sequence[str], *, on_retry: OnRetry) -> list[tuple[str, str]]:
        """Delete *keys* with DeleteObjects, 1000 at a time; return the failures."""
        failures: list[tuple[str, str]] = []
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            try:
                answer = self._call(
                    "delete",
                    lambda b=batch: self.client.delete_objects(  # type: ignore[misc]
                        Bucket=self.bucket,
                        Delete={"Objects": [{"Key": k} for k in b], "Quiet": True},
                    ),
                    on_retry,
                )
            except RemoteError as exc:
                failures.extend((k, str(exc)) for k in batch)
                continue
            failures.extend(
                (e.get("Key", "?"), f"{e.get('Message', 'delete failed')} ({e.get('Code')})")
                for e in answer.get("Errors", ())
            )
        return failures

    def copy_object(
        self,
        source: CopySource,
        key: str,
        *,
        info: ObjectInfo | None,
        extra_metadata: Mapping[str, str],
        on_retry: OnRetry,
    ) -> str:
        """Copy *source* to *key* server-side, keeping its headers; return the new ETag.

        With *info* (a HEAD of the source) the headers and metadata are given explicitly,
        plus *extra_metadata*; without it S3 copies them as they are.
        """
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "CopySource": {"Bucket": source.bucket, "Key": source.key},
            **source.conditions(),
        }
        if info is not None:
            kwargs |= dict(info.headers)
            kwargs["Metadata"] = {**info.metadata, **extra_metadata}
            kwargs["MetadataDirective"] = "REPLACE"
        answer = self._call(
            f"copy of '{source.key}' to '{key}'",
            lambda: self.client.copy_object(**kwargs),
            on_retry,
        )
        return _quoted(str(answer.get("CopyObjectResult", {}).get("ETag", "")))

    def replace_headers(
        self,
        key: str,
        headers: Mapping[str, str],
        metadata: Mapping[str, str],
        *,
        on_retry: OnRetry,
    ) -> str:
        """Give *key* exactly *headers* and *metadata* in place (CopyObject onto itself with
        MetadataDirective REPLACE: no bytes move); return the new ETag."""
        wanted = ObjectInfo(0, 0, "", dict(metadata), dict(headers))
        return self.copy_object(
            CopySource(self.bucket, key), key, info=wanted, extra_metadata={}, on_retry=on_retry
        )

    def copy_parts(
        self,
        source: CopySource,
        key: str,
        *,
        info: ObjectInfo,
        extra_metadata: Mapping[str, str],
        on_retry: OnRetry,
    ) -> str:
        """Copy *source* to *key* server-side in parallel parts (UploadPartCopy)."""
        part_size = used_part_size(info.size, self.part_size)
        ranges = [(o, min(o + part_size, info.size) - 1) for o in range(0, info.size, part_size)]

        def part(upload_id: str, number: int, first: int, last: int) -> Part:
            kwargs: dict[str, Any] = {
                "Bucket": self.bucket,
                "Key": key,
                "UploadId": upload_id,
                "PartNumber": number,
                "CopySource": {"Bucket": source.bucket, "Key": source.key},
                "CopySourceRange": f"bytes={first}-{last}",
                **source.conditions(),
            }
            answer = self._call(
                f"copy of part {number} of '{source.key}'",
                lambda: self.client.upload_part_copy(**kwargs),
                on_retry,
            )
            return Part(str(answer["CopyPartResult"]["ETag"]))

        extra = {**info.headers, "Metadata": {**info.metadata, **extra_metadata}}
        # the bytes never pass through here: the copy keeps no checksum of its own
        return self._multipart(key, extra, ranges, part, on_retry, checksum=False)

    def start_upload(
        self, key: str, extra: Mapping[str, Any], *, on_retry: OnRetry, checksum: bool = True
    ) -> str:
        """Start a multipart upload of *key*; return its upload id.

        With *checksum* the upload asks for a full-object CRC32 (what a PutObject stores),
        so every part carries its CRC32 and the completed object keeps the whole one for
        any tool to verify. A server that refuses the request is asked again without
        it, and is not asked again by this store."""
        doing = f"multipart upload of '{key}'"
        if checksum and self._full_crc32:
            try:
                created = self._call(
                    doing,
                    lambda: self.client.create_multipart_upload(
                        Bucket=self.bucket, Key=key, **extra, **FULL_CRC32
                    ),
                    on_retry,
                )
            except RemoteError as exc:
                if exc.code not in _NO_CHECKSUMS:
                    raise
                self._full_crc32 = False
            else:
                upload_id = str(created["UploadId"])
                self._checked_uploads.add(upload_id)
                return upload_id
        created = self._call(
            doing,
            lambda: self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra),
            on_retry,
        )
        return str(created["UploadId"])

    def upload_part(
        self, key: str, upload_id: str, number: int, body: bytes | bytearray, *, on_retry: OnRetry
    ) -> Part:
        """Upload part *number* of an upload (with its Content-MD5, and its CRC32 when
        the upload keeps a checksum); return the Part."""
        import zlib

        crc = zlib.crc32(body)
        fields = {"ChecksumCRC32": crc32_text(crc)} if upload_id in self._checked_uploads else {}
        answer = self._call(
            f"multipart upload of '{key}', part {number}",
            lambda: self.client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=cast(bytes, body),  # botocore sends a bytearray as is: no copy
                **fields,  # type: ignore[arg-type]
            ),
            on_retry,
        )
        return Part(str(answer["ETag"]), crc, len(body))

    def unfinished_uploads(self, key: str) -> list[str]:
        """Return the ids of multipart uploads of exactly *key* that were never finished."""
        answer = self._call(
            "listing of multipart uploads",
            lambda: self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key),
            None,
        )
        return [u["UploadId"] for u in answer.get("Uploads", ()) if u.get("Key") == key]

    def open_object(self, key: str, *, on_retry: OnRetry) -> tuple[ObjectInfo, BinaryIO]:
        """Return what a GET tells of *key* and its body as a stream (close it when done)."""
        answer = self._call(
            f"download of '{key}'",
            lambda: self.client.get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED"),
            on_retry,
        )
        return _info(answer), cast(BinaryIO, answer["Body"])

    def presign(self, key: str, expires: int) -> str:
        """Return a URL that GETs *key* without credentials for *expires* seconds."""
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
            )
        )

    def delete(self, key: str, *, on_retry: OnRetry) -> None:
        """Delete *key* (no error when it is already gone)."""
        self._call(
            f"delete of '{key}'",
            lambda: self.client.delete_object(Bucket=self.bucket, Key=key),
            on_retry,
        )

    def get_range(
        self, key: str, first: int, last: int, *, on_retry: OnRetry, if_match: str | None = None
    ) -> bytes:
        """Return bytes *first* to *last* (inclusive) of *key* (of the version whose ETag
        is *if_match*: another version fails, PreconditionFailed)."""
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Range": f"bytes={first}-{last}",
        }
        if if_match:
            kwargs["IfMatch"] = if_match

        def get() -> bytes:
            answer = self.client.get_object(**kwargs)
            return bytes(answer["Body"].read())

        return self._call(f"download of '{key}' bytes {first}-{last}", get, on_retry)

    def first_part_size(self, key: str) -> int | None:
        """Return the size of the first part *key* was uploaded in, None when it was not
        multipart or the server does not tell (best effort, one HEAD)."""
        try:
            answer = self._call(
                f"HEAD of part 1 of '{key}'",
                lambda: self.client.head_object(Bucket=self.bucket, Key=key, PartNumber=1),
                None,
            )
        except RemoteError:
            return None
        parts, length = answer.get("PartsCount"), answer.get("ContentLength")
        return int(length) if parts and int(parts) > 1 and length else None

    def put_from(
        self,
        key: str,
        *,
        info: ObjectInfo,
        read: Callable[[int, int], bytes],
        extra_metadata: Mapping[str, str],
        on_retry: OnRetry,
    ) -> str:
        """Store an object read range by range with *read* (from another store), keeping
        *info*'s headers and metadata; memory holds at most a part per part worker."""
        extra: dict[str, Any] = {**info.headers, "Metadata": {**info.metadata, **extra_metadata}}
        if info.size < self.multipart_threshold:
            body = read(0, info.size - 1) if info.size else b""
            answer = self._call(
                f"upload of '{key}'",
                lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra),
                on_retry,
            )
            return _quoted(str(answer.get("ETag", "")))
        part_size = used_part_size(info.size, self.part_size)
        ranges = [(o, min(o + part_size, info.size) - 1) for o in range(0, info.size, part_size)]

        def part(upload_id: str, number: int, first: int, last: int) -> Part:
            return self.upload_part(key, upload_id, number, read(first, last), on_retry=on_retry)

        return self._multipart(key, extra, ranges, part, on_retry)

    def close(self) -> None:
        """Stop the part pool (the clients close with the process)."""
        if self._parts is not None:
            self._parts.shutdown(wait=True, cancel_futures=True)


def _connection_code(exc: BaseException) -> str:
    """Return the code of botocore's failure to connect: refused, a name that does not
    resolve, or any other."""
    told = str(getattr(exc, "kwargs", {}).get("error", exc))
    if "Connection refused" in told:
        return "ConnectionRefused"
    if "Name or service not known" in told or "getaddrinfo" in told or "resolve" in told:
        return "DNSFailure"
    return "ConnectionError"


def _region_told(response: Any) -> str | None:
    """Return the region a redirect names: S3's ``x-amz-bucket-region`` header, else the
    regional endpoint its error body gives (``b.s3.eu-west-1.amazonaws.com``)."""
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    told = headers.get("x-amz-bucket-region") or response.get("Error", {}).get("Region")
    if not told:
        endpoint = str(response.get("Error", {}).get("Endpoint", ""))
        found = re.search(r"(?:^|\.)s3[.-]([a-z0-9-]+)\.amazonaws\.com", endpoint)
        told = found.group(1) if found else None
    return told if told and _REGION.fullmatch(told) else None


def next_page(bucket: str, truncated: bool, token: str | None) -> str | None:
    """Return the continuation token of a listing's next page, None after the last one;
    raise RemoteError when a page says more follow but gives no token: the listing is
    incomplete, and a run that took it for whole would delete what it never saw."""
    if not truncated:
        return None
    if not token:
        raise RemoteError(
            f"listing bucket '{bucket}' is incomplete: the server says more keys follow "
            "but gives no continuation token (nothing deleted)",
            code="IncompleteListing",
        )
    return token


def _info(answer: Any) -> ObjectInfo:
    return ObjectInfo(
        int(answer.get("ContentLength", 0)),
        int(answer["LastModified"].timestamp()) * 10**9,
        _quoted(str(answer.get("ETag", ""))),
        dict(answer.get("Metadata") or {}),
        {name: answer[name] for name in KEPT_HEADERS if answer.get(name)},
        "SSE-C" if answer.get("SSECustomerAlgorithm") else answer.get("ServerSideEncryption"),
    )


def _put_answer(fast: Fast, key: str, answer: Answer, md5: str | None) -> str:
    """Return the ETag of a PutObject's *answer* through awscrt, checked against *md5*."""
    parsed = fast.protocol.answer("PutObject", answer, key=key, md5=md5)
    return _quoted(str(parsed["ETag"]))


def _quoted(etag: str) -> str:
    """Return *etag* in quotes, as listings give it (some servers drop them on copies)."""
    return etag if etag.startswith('"') or not etag else f'"{etag}"'


BUSY = "TooManyInvalidationsInProgress"
# CloudFront finishes invalidations in minutes: wait up to about four for room
BUSY_POLICY = RetryPolicy(attempts=8, base=5.0, cap=60.0)


def _only_busy(exc: BaseException) -> Disposition:
    busy = isinstance(exc, RemoteError) and exc.code == BUSY
    return Disposition.RETRY if busy else Disposition.FAIL


class CloudFront:
    """Invalidations of CloudFront distributions: the one AWS service besides S3.

    Requests are retried as S3's are; TooManyInvalidationsInProgress (too many paths in
    progress on the distribution) is retried by *busy*, with longer waits.
    """

    def __init__(self, client: Any, *, retrier: Retrier, busy: Retrier) -> None:
        self.client = client
        self._retry = retrier
        self._busy = busy

    def _call(self, doing: str, fn: Callable[[], T], on_retry: OnRetry | None) -> T:
        def attempt() -> T:
            try:
                return fn()
            except Exception as exc:
                if not _from_botocore(exc):
                    raise
                raise _cloudfront_error(exc, doing) from exc

        return self._retry(attempt, on_retry)

    def origin_path(self, distribution: str, bucket: str) -> str:
        """Return the OriginPath (``/site`` or ``''``) of the origin of *distribution*
        that reads from *bucket*: the one whose domain starts with the bucket's name, else
        the only origin there is."""
        answer = self._call(
            f"reading CloudFront distribution {distribution}",
            lambda: self.client.get_distribution(Id=distribution),
            None,
        )
        config = answer["Distribution"]["DistributionConfig"]
        origins = config.get("Origins", {}).get("Items") or []
        for origin in origins:
            if str(origin.get("DomainName", "")).startswith(bucket + ".s3"):
                return str(origin.get("OriginPath") or "")
        return str(origins[0].get("OriginPath") or "") if len(origins) == 1 else ""

    def invalidate(
        self, distribution: str, paths: Sequence[str], *, reference: str, on_retry: OnRetry
    ) -> str:
        """Create an invalidation of *paths* on *distribution*; return its id. The same
        *reference* on every attempt: CloudFront makes only one of a retried request."""
        batch = {
            "Paths": {"Quantity": len(paths), "Items": list(paths)},
            "CallerReference": reference,
        }

        def create() -> Any:
            return self._call(
                f"invalidation on {distribution}",
                lambda: self.client.create_invalidation(
                    DistributionId=distribution, InvalidationBatch=batch
                ),
                on_retry,
            )

        answer = self._busy(create, on_retry)
        return str(answer["Invalidation"]["Id"])


def _from_botocore(exc: BaseException) -> bool:
    """Return whether *exc* is botocore's (loaded by then: its client raised it)."""
    import botocore.exceptions as bce
    from botocore.parsers import ResponseParserError

    return isinstance(exc, (bce.BotoCoreError, bce.ClientError, ResponseParserError))


def _cloudfront_error(exc: BaseException, doing: str) -> RemoteError:
    import botocore.exceptions as bce

    if isinstance(exc, bce.NoCredentialsError):
        return RemoteError(f"{doing} failed: no AWS credentials found", code="NoCredentials")
    if not isinstance(exc, bce.ClientError):
        kind = "ConnectionError" if isinstance(exc, bce.ConnectionError) else "Error"
        return RemoteError(f"{doing} failed: {exc}", code=kind)
    err = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(err.get("Code") or status or "Error")
    detail = " ".join(str(err.get("Message") or code).split())
    return RemoteError(f"{doing} failed: {detail} ({code})", code=code, status=status)


def _jitter() -> float:
    """Return a random fraction for a retry's backoff; random is imported at the first."""
    import random

    return random.random()


class Connection(NamedTuple):
    """How to reach S3 and how hard to try: the options every command shares."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    retries: int = 4
    timeout: float = 60.0  # seconds a request may wait for the server before it is retried
    workers: int = 16
    max_requests: int = MAX_REQUESTS  # awscrt's connections: one per request in flight
    multipart_threshold: int = 8 * 1024 * 1024
    part_size: int = 8 * 1024 * 1024
    verify_ssl: bool = True  # False: TLS without checking the server's certificate

    def open(self, bucket: str) -> S3Store:
        """Return a store for *bucket* on one client sized for the workers and their parts
        (and small requests through awscrt, when it is installed), made on its first
        request. A bad --endpoint-url or --profile raises ConfigError here, not then."""
        part_workers = max(2, min(self.workers, 8))
        if self.endpoint_url is not None:
            _check_endpoint(self.endpoint_url)
        if self.region is not None:
            _check_region(self.region)
        session = _session(self.profile) if self.profile is not None else None

        def connect() -> Clients:
            nonlocal session
            session = session or _session(self.profile)
            verify = ca_bundle(session, verify=self.verify_ssl)
            boto = once(
                functools.partial(
                    make_client,
                    session=session,
                    endpoint_url=self.endpoint_url,
                    region=self.region,
                    profile=self.profile,
                    connections=self.workers + part_workers + 2,
                    timeout=self.timeout,
                    verify=verify,
                )
            )
            ca = f"CA file {verify}" if isinstance(verify, str) else "the system's CA store"
            return Clients(boto, self._fast(session, verify), ca)

        return S3Store(
            connect,
            bucket,
            endpoint=self.endpoint_url,
            retrier=self._retrier(),
            multipart_threshold=self.multipart_threshold,
            part_size=self.part_size,
            part_workers=part_workers,
            window=Window(self.max_requests),
        )

    def _retrier(self) -> Retrier:
        """Return the retrier of every request but a busy CloudFront's: --retries attempts."""
        return Retrier(RetryPolicy(attempts=self.retries + 1), classify, time.sleep, _jitter)

    def _fast(self, session: boto3.session.Session, verify: bool | str | None) -> Fast | None:
        """Return the awscrt client and the botocore protocol it sends for, or None
        without awscrt or credentials (botocore tells the user, on the first request)."""
        from s3sync.store.protocol import BotocoreProtocol

        credentials = _current_credentials(session)
        if credentials is None or not crt_available():
            return None
        region = _region(self.region, session)
        config = client_config(self.endpoint_url, 1, self.timeout)
        try:
            protocol = BotocoreProtocol(
                session, endpoint_url=self.endpoint_url, region=region, config=config
            )
        except ValueError as exc:
            shown = endpoint_shown(self.endpoint_url or "")
            raise ConfigError(f"bad endpoint URL '{shown}': {exc}") from None
        crt = CrtClient(
            region=region,
            credentials=credentials,
            timeout=self.timeout,
            secure=urlsplit(protocol.endpoint_url).scheme == "https",
            verify=verify,
            connections=self.max_requests,
        )
        return Fast(crt, protocol)

    def cloudfront(self) -> CloudFront:
        """Return CloudFront with this connection's profile, retries and timeout (its
        endpoint is AWS's, or AWS_ENDPOINT_URL_CLOUDFRONT: --endpoint-url is S3's)."""
        from botocore.config import Config

        config = Config(
            retries={"total_max_attempts": 1},
            connect_timeout=min(10.0, self.timeout),
            read_timeout=self.timeout,
        )
        session = _session(self.profile)
        verify = ca_bundle(session, verify=self.verify_ssl)
        client = session.client("cloudfront", region_name="us-east-1", config=config, verify=verify)
        return CloudFront(
            client,
            retrier=self._retrier(),
            busy=Retrier(BUSY_POLICY, _only_busy, time.sleep, _jitter),
        )
