"""Small requests through the AWS Common Runtime: the only module that imports awscrt.

awscrt signs and sends requests on native threads, outside the GIL: about 0.7 ms of
this process's CPU per small PutObject, against about 3 ms through botocore. s3sync
sends small files, fetches small objects and lists through it when awscrt is installed
(``S3SYNC_CRT=0`` turns it off); everything else, and everything when it is missing,
goes through botocore. Retries stay s3sync's: the runtime's own are off, so each
failure is counted and classified.
"""

from __future__ import annotations

import io as stdio
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from awscrt import auth, http, s3
    from awscrt import io as crt_io

# boto3 argument -> the HTTP header it is sent as
HEADER_NAMES = {
    "ContentType": "Content-Type",
    "CacheControl": "Cache-Control",
    "ContentDisposition": "Content-Disposition",
    "ContentEncoding": "Content-Encoding",
    "ContentLanguage": "Content-Language",
    "Expires": "Expires",
    "WebsiteRedirectLocation": "x-amz-website-redirect-location",
    "StorageClass": "x-amz-storage-class",
    "ACL": "x-amz-acl",
}
# what awscrt reports, without status or body, for some error statuses (seen on
# ListObjectsV2): the S3 code and status they stand for
_STATUS_ERRORS = {
    "AWS_ERROR_S3_INTERNAL_ERROR": ("InternalError", 500),
    "AWS_ERROR_S3_SLOW_DOWN": ("SlowDown", 503),
    "AWS_ERROR_S3_REQUEST_TIME_TOO_SKEWED": ("RequestTimeTooSkewed", 403),
    "AWS_ERROR_S3_REQUEST_TIMEOUT": ("RequestTimeout", 400),
}
_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")
UNRESERVED = "-_.~/"  # what S3's path encoding leaves as is (and "/", between segments)
Credentials = Callable[[], tuple[str, str, str | None]]
T = TypeVar("T")


class CrtFailure(Exception):
    """A request through awscrt failed: the S3 error *code* (or ConnectionError,
    ReadTimeout, NotS3), the HTTP *status* when an answer came, and a *detail*."""

    def __init__(self, code: str, status: int | None, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status
        self.detail = detail


def addressing(endpoint: str, bucket: str, *, path_style: bool) -> tuple[str, str]:
    """Return the Host of *bucket*'s requests at *endpoint* and the path its keys go
    under: ``/bucket/`` in path style (always for a dotted bucket, which would not match
    a certificate), else ``/`` on the host ``bucket.endpoint``."""
    netloc = urlsplit(endpoint).netloc
    if path_style or "." in bucket:
        return netloc, f"/{quote(bucket, safe='')}/"
    return f"{bucket}.{netloc}", "/"


def available() -> bool:
    """Return whether requests can go through awscrt here; load it if so (on first use,
    not on import: a run that sends nothing never spends the time)."""
    if os.environ.get("S3SYNC_CRT", "1") == "0":
        return False
    global auth, http, s3, crt_io  # bound once, before any client exists
    try:
        from awscrt import auth, http, s3
        from awscrt import io as crt_io
    except ImportError:  # pragma: no cover - the boto3 path is tested with S3SYNC_CRT=0
        return False
    return True


class CrtClient:
    """Requests on one CRT S3 client, from any thread: blocking PutObject, GetObject and
    ListObjectsV2 of one page, and a GetObject into a file that tells its end through a
    callback (the runtime writes the file; no Python thread waits for it)."""

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        region: str,
        credentials: Credentials,
        timeout: float,
        path_style: bool,
    ) -> None:
        secure = urlsplit(endpoint).scheme == "https"
        self._host, self._prefix = addressing(endpoint, bucket, path_style=path_style)
        self._timeout = timeout
        self._watchdog = _Watchdog()

        def provide() -> Any:
            key, secret, token = credentials()
            return auth.AwsCredentials(key, secret, token)

        # one event loop: with two, requests hop between threads, and each hop wakes one
        # (a fifth of the CPU of small requests, measured)
        elg = crt_io.EventLoopGroup(1)
        bootstrap = crt_io.ClientBootstrap(elg, crt_io.DefaultHostResolver(elg))
        provider = auth.AwsCredentialsProvider.new_delegate(provide)
        self._client = s3.S3Client(
            bootstrap=bootstrap,
            region=region,
            tls_mode=s3.S3RequestTlsMode.ENABLED if secure else s3.S3RequestTlsMode.DISABLED,
            signing_config=s3.create_default_s3_signing_config(
                region=region, credential_provider=provider
            ),
            multipart_upload_threshold=5 * 1024**3,  # never split: s3sync does multipart
            retry_config=s3.S3RetryConfig(retry_mode=s3.S3RetryMode.NONE),
            connect_timeout_ms=int(min(10.0, timeout) * 1000),
        )

    def put(
        self,
        key: str,
        body: bytes | bytearray,
        fields: Mapping[str, str],
        metadata: Mapping[str, str],
    ) -> str:
        """Store *body* as *key* with *fields* (boto3 argument names) and user *metadata*;
        return the ETag, or raise CrtFailure."""
        request = self._put(key, body, fields, metadata)
        answer = self._send(s3.S3RequestType.PUT_OBJECT, request, size=len(body), body=None)
        return answered_etag(answer)

    def put_later(
        self,
        key: str,
        body: bytes,
        fields: Mapping[str, str],
        metadata: Mapping[str, str],
        finished: Callable[[str | CrtFailure], None],
        post: Callable[[Callable[[], object]], None],
    ) -> None:
        """Start storing *body* as *key*, as ``put`` does; at the end, ``post`` a call of
        *finished* with the ETag or the CrtFailure (see ``get_to_file``)."""
        self._start(
            s3.S3RequestType.PUT_OBJECT,
            self._put(key, body, fields, metadata),
            size=len(body),
            body=None,
            done=posting(finished, post, answered_etag),
        )

    def _put(
        self,
        key: str,
        body: bytes | bytearray,
        fields: Mapping[str, str],
        metadata: Mapping[str, str],
    ) -> Any:
        headers = [
            ("Host", self._host),
            ("Content-Length", str(len(body))),
            *((HEADER_NAMES[name], value) for name, value in fields.items()),
            *((f"x-amz-meta-{name}", value) for name, value in metadata.items()),
        ]
        # the runtime reads the body on its own thread, after the caller's buffer may be reused
        data = body if isinstance(body, bytes) else bytes(body)
        return http.HttpRequest(
            "PUT", self._path(key), http.HttpHeaders(headers), stdio.BytesIO(data)
        )

    def get(self, key: str, size: int) -> tuple[list[tuple[str, str]], bytes]:
        """Return the headers and the body of *key*, listed with *size* bytes (small: it
        is held in memory), or raise CrtFailure."""
        chunks: list[bytes] = []
        answer = self._send(
            s3.S3RequestType.GET_OBJECT, self._get(self._path(key)), size=size, body=chunks
        )
        answered_etag(answer)  # a success has one; anything else raises
        return answer["headers"], b"".join(chunks)

    def get_to_file(
        self,
        key: str,
        path: str,
        size: int,
        finished: Callable[[list[tuple[str, str]] | CrtFailure], None],
        post: Callable[[Callable[[], object]], None],
    ) -> None:
        """Write *key* (listed with *size* bytes) into the file *path*, created or
        truncated; at the end, ``post`` a call of *finished* with the answer's headers or
        the CrtFailure. (The runtime's thread only posts: Python work there would hold
        up every other request.) The file may be left behind after a failure."""

        self._start(
            s3.S3RequestType.GET_OBJECT,
            self._get(self._path(key)),
            size=size,
            body=None,
            done=posting(finished, post, answered_headers),
            recv_filepath=path,
        )

    def list_page(self, prefix: str, token: str | None) -> bytes:
        """Return the XML of the ListObjectsV2 page of *prefix* after *token* (keys
        URL-encoded), or raise CrtFailure."""
        query = f"list-type=2&encoding-type=url&prefix={quote(prefix, safe='')}"
        if token:
            query += f"&continuation-token={quote(token, safe='')}"
        chunks: list[bytes] = []
        answer = self._send(
            s3.S3RequestType.DEFAULT,
            self._get(f"{self._prefix}?{query}"),
            size=0,
            body=chunks,
            operation_name="ListObjectsV2",
        )
        status = answer.get("status_code") or answer.get("status")
        if answer.get("error") is not None or status is None or status >= 300:
            answered_etag(answer)  # raises the failure it was
        return b"".join(chunks)

    def _get(self, path: str) -> Any:
        return http.HttpRequest("GET", path, http.HttpHeaders([("Host", self._host)]))

    def _path(self, key: str) -> str:
        return self._prefix + quote(key, safe=UNRESERVED)

    def _send(
        self, kind: Any, request: Any, *, size: int, body: list[bytes] | None, **extra: Any
    ) -> dict[str, Any]:
        """Send *request* and wait for its end; return what the callbacks were told."""
        answers: list[dict[str, Any]] = []
        ended = threading.Event()

        def done(answer: dict[str, Any]) -> None:
            answers.append(answer)
            ended.set()

        self._start(kind, request, size=size, body=body, done=done, **extra)
        ended.wait()
        return answers[0]

    def _start(
        self,
        kind: Any,
        request: Any,
        *,
        size: int,
        body: list[bytes] | None,
        done: Callable[[dict[str, Any]], None],
        **extra: Any,
    ) -> None:
        """Send *request* of *size* bytes; call *done* once, on the runtime's thread, with
        what the callbacks were told. The runtime has no idle timeout, so the whole
        request gets the timeout plus time for its bytes at a slow 64 KiB/s; the
        watchdog cancels it after that."""
        answer: dict[str, Any] = {}

        def on_headers(status_code: int, headers: list[tuple[str, str]], **_: Any) -> None:
            answer["status"] = status_code
            answer["headers"] = headers

        def on_body(chunk: bytes, **_: Any) -> None:
            assert body is not None
            body.append(bytes(chunk))

        def on_done(**kwargs: Any) -> None:
            self._watchdog.forget(watched)
            answer.update(kwargs)
            if watched.expired and answer.get("error") is not None:  # cancelled by the watchdog
                answer["error"] = _TimedOut(f"no answer in {self._timeout:g}s")
            done(answer)

        watched = _Watched(self._timeout + size / 65536)
        sent = self._client.make_request(
            type=kind,
            request=request,
            on_headers=on_headers,
            on_body=on_body if body is not None else None,
            on_done=on_done,
            **extra,
        )
        self._watchdog.watch(watched, sent)


class _TimedOut(Exception):
    """A request the watchdog cancelled at its deadline."""

    name = "TIMEOUT"


class _Watched:
    """One request's deadline (monotonic seconds); whether it ended, and whether the
    watchdog cancelled it."""

    __slots__ = ("deadline", "expired", "finished")

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.expired = False
        self.finished = False


class _Watchdog:
    """Cancels the requests that outlive their deadline; one thread, started when the
    first request is watched, waking twice a second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[_Watched, Any] = {}
        self._thread: threading.Thread | None = None

    def watch(self, watched: _Watched, request: Any) -> None:
        with self._lock:
            if watched.finished:  # it ended before it could be watched
                return
            self._requests[watched] = request
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="s3sync-crt-watchdog", daemon=True
                )
                self._thread.start()

    def forget(self, watched: _Watched) -> None:
        with self._lock:
            watched.finished = True
            self._requests.pop(watched, None)

    def _run(self) -> None:
        while True:
            time.sleep(0.5)
            now = time.monotonic()
            with self._lock:
                late = [(w, r) for w, r in self._requests.items() if w.deadline <= now]
                for watched, _ in late:
                    del self._requests[watched]
                    watched.expired = True
            for _, request in late:
                request.cancel()


def telling(
    finished: Callable[[T | CrtFailure], None], result: Callable[[dict[str, Any]], T]
) -> Callable[[dict[str, Any]], None]:
    """Return what tells *finished* the end of a request: what ``result`` makes of the
    answer, or the CrtFailure it raises."""

    def told(answer: dict[str, Any]) -> None:
        try:
            value = result(answer)
        except CrtFailure as exc:
            finished(exc)
            return
        finished(value)

    return told


def posting(
    finished: Callable[[T | CrtFailure], None],
    post: Callable[[Callable[[], object]], None],
    result: Callable[[dict[str, Any]], T],
) -> Callable[[dict[str, Any]], None]:
    """Return the *done* of a request whose end ``post`` hands to *finished* (see
    ``telling``)."""
    told = telling(finished, result)
    return lambda answer: post(lambda: told(answer))


def answered_headers(answer: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return the headers of a successful GET's answer; raise CrtFailure for any other."""
    answered_etag(answer)  # a success has one; anything else raises
    return list(answer["headers"])


def answered_etag(answer: Mapping[str, Any]) -> str:
    """Return the ETag of a successful answer; raise CrtFailure for any other."""
    failure = answer.get("failure")  # told as such by the caller (see s3sync.wire)
    if isinstance(failure, CrtFailure):
        raise failure
    status = answer.get("status_code") or answer.get("status")
    error = answer.get("error")
    if error is None and status is not None and status < 300:
        etag = next((v for k, v in answer.get("headers", ()) if k.lower() == "etag"), None)
        if not etag:  # a web page answering 200 is not a stored object
            raise CrtFailure("NotS3", status, "answer without ETag")
        return str(etag) if str(etag).startswith('"') else f'"{etag}"'
    if status is not None and status >= 300:
        body = answer.get("error_body") or b""
        found = _CODE.search(body)
        code = found.group(1).decode(errors="replace") if found else str(status)
        message = re.search(rb"<Message>([^<]{1,300})</Message>", body)
        detail = message.group(1).decode(errors="replace") if message else code
        raise CrtFailure(code, status, detail)
    if isinstance(error, _TimedOut):
        raise CrtFailure("ReadTimeout", None, str(error))
    name = str(getattr(error, "name", "") or type(error).__name__)
    if name in _STATUS_ERRORS:  # an error status the runtime kept no answer of
        code, status = _STATUS_ERRORS[name]
        raise CrtFailure(code, status, str(getattr(error, "message", "") or code))
    raise CrtFailure("ReadTimeout" if "TIMEOUT" in name else "ConnectionError", None, name)
