"""Requests through the AWS Common Runtime: the only module that imports awscrt.

awscrt signs and sends requests on native threads, outside the GIL: about a third of
botocore's CPU per small request. What it sends is built elsewhere, by botocore (the
request's method, URL, headers and body: endpoint, addressing and parameters are
botocore's), and what comes back is read there too; this module only moves requests
and answers. Retries stay s3sync's: the runtime's own are off, so each failure is
counted and classified.
"""

from __future__ import annotations

import io as stdio
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from awscrt import auth, http, s3
    from awscrt import io as crt_io

Credentials = Callable[[], tuple[str, str, str | None]]
_KEEP_BODY_MAX = 1024 * 1024  # of an error answer, kept for botocore to read
_GBPS_PER_CONNECTION = 0.4  # aws-c-s3's s_throughput_per_connection_gbps
# headers botocore writes that the runtime sets itself, or that would cost a round trip
_DROPPED = frozenset({"expect", "transfer-encoding"})


class Built(NamedTuple):
    """A request as botocore builds it (unsigned): method, URL, headers and body."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | None


class Answer(NamedTuple):
    """What came back: the status and headers (None and () when nothing did), the body
    when it was kept, and the transport's failure when there was one."""

    status: int | None
    headers: list[tuple[str, str]]
    body: bytes
    failure: CrtFailure | None


class CrtFailure(Exception):
    """A request through awscrt got no answer: the *code* s3sync classifies it by
    (ConnectionError, ConnectionRefused, DNSFailure, TLSError, ReadTimeout) and a
    *detail* naming the runtime's error."""

    def __init__(self, code: str, status: int | None, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status
        self.detail = detail


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
    """Sends requests botocore built on one CRT S3 client, from any thread: blocking, or
    telling their end through a callback (a GET may write its body into a file: the
    runtime writes it, no Python thread waits for it).

    *verify* is botocore's: None for the system's CA store, a CA bundle's path, or False
    to skip verifying the server's certificate. The runtime opens up to *connections*
    connections: one per request the caller keeps in flight."""

    def __init__(
        self,
        *,
        region: str,
        credentials: Credentials,
        timeout: float,
        secure: bool,
        verify: bool | str | None,
        connections: int,
    ) -> None:
        self._timeout = timeout
        self._watchdog = _Watchdog()

        def provide() -> Any:
            key, secret, token = credentials()
            return auth.AwsCredentials(key, secret, token)

        # one event loop: with two, requests hop between threads, and each hop wakes one
        elg = crt_io.EventLoopGroup(1)
        bootstrap = crt_io.ClientBootstrap(elg, crt_io.DefaultHostResolver(elg))
        provider = auth.AwsCredentialsProvider.new_delegate(provide)
        self._client = s3.S3Client(
            bootstrap=bootstrap,
            region=region,
            tls_mode=s3.S3RequestTlsMode.ENABLED if secure else s3.S3RequestTlsMode.DISABLED,
            tls_connection_options=_tls_options(verify) if secure else None,
            signing_config=s3.create_default_s3_signing_config(
                region=region, credential_provider=provider
            ),
            multipart_upload_threshold=5 * 1024**3,  # never split: s3sync does multipart
            retry_config=s3.S3RetryConfig(retry_mode=s3.S3RetryMode.NONE),
            connect_timeout_ms=int(min(10.0, timeout) * 1000),
            # the runtime sizes its connection pool by the throughput asked for, at
            # 0.4 Gbit/s a connection; small objects need one per request in flight
            throughput_target_gbps=_GBPS_PER_CONNECTION * connections,
        )

    def send(self, operation: str, request: Built, *, size: int, keep_body: bool = False) -> Answer:
        """Send *request* (for *size* bytes of answer or body) and wait for its end."""
        answers: list[Answer] = []
        ended = threading.Event()

        def done(answer: Answer) -> None:
            answers.append(answer)
            ended.set()

        self.start(operation, request, size=size, keep_body=keep_body, done=done)
        ended.wait()  # bounded: the watchdog cancels a request at its deadline
        return answers[0]

    def start(
        self,
        operation: str,
        request: Built,
        *,
        size: int,
        done: Callable[[Answer], None],
        keep_body: bool = False,
        recv_path: str | None = None,
    ) -> None:
        """Send *request*; call *done* once, on the runtime's thread, with the Answer (an
        error answer's body is always kept). The runtime has no idle timeout, so the
        whole request gets the timeout plus time for its bytes at a slow 64 KiB/s; the
        watchdog cancels it after that. With *recv_path* a successful GET's body goes
        into that file (opened by the runtime: pass a /proc/self/fd path of a file the
        caller created, so no name is followed)."""
        status: list[int] = []
        heads: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        def on_headers(status_code: int, headers: list[tuple[str, str]], **_: Any) -> None:
            status.append(status_code)
            heads.extend(headers)

        def on_body(chunk: bytes, **_: Any) -> None:
            chunks.append(bytes(chunk))

        def on_done(
            error: BaseException | None = None,
            status_code: int | None = None,
            error_headers: list[tuple[str, str]] | None = None,
            error_body: bytes | None = None,
            **_: Any,
        ) -> None:
            self._watchdog.forget(watched)
            if error is None:
                done(Answer(status[-1] if status else status_code, heads, b"".join(chunks), None))
            elif status_code is not None and status_code >= 300:  # an error answer
                body = bytes(error_body or b"")[:_KEEP_BODY_MAX]
                done(Answer(status_code, list(error_headers or ()), body, None))
            else:
                done(_no_answer(error, expired=watched.expired, timeout=self._timeout))

        kind, name = _request_type(operation)
        extra: dict[str, Any] = {"operation_name": name} if name else {}
        if recv_path is not None:
            extra["recv_filepath"] = recv_path
        watched = _Watched(self._timeout + size / 65536)
        sent = self._client.make_request(
            type=kind,
            request=_http_request(request),
            on_headers=on_headers,
            on_body=on_body if keep_body and recv_path is None else None,
            on_done=on_done,
            **extra,
        )
        self._watchdog.watch(watched, sent)


def combine_crc32(parts: Iterable[tuple[int, int]]) -> int:
    """Return the CRC32 of bytes made of consecutive parts, from each part's (CRC32,
    size), as if computed over them all in one pass."""
    from awscrt import checksums  # pure arithmetic: no client, no threads

    crc = 0
    for part_crc, size in parts:
        crc = checksums.combine_crc32(crc, part_crc, size)
    return crc


def _request_type(operation: str) -> tuple[Any, str | None]:
    """Return the runtime's kind of request for a botocore *operation*, and the name it
    must be given when it is no kind of its own."""
    if operation == "PutObject":
        return s3.S3RequestType.PUT_OBJECT, None
    # a GET too goes as built, in one request: as GET_OBJECT the runtime would ask for
    # ranges, whose answers carry no checksum of the whole object
    return s3.S3RequestType.DEFAULT, operation


def _http_request(built: Built) -> Any:
    """Return the runtime's request for what botocore built: the same method, path,
    query, headers and body; the Host and Content-Length the runtime needs."""
    parts = urlsplit(built.url)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    headers = [(k, v) for k, v in built.headers if k.lower() not in _DROPPED]
    names = {k.lower() for k, _ in headers}
    if "host" not in names:
        headers.append(("Host", parts.netloc))
    if "content-length" not in names and built.method in ("PUT", "POST"):
        headers.append(("Content-Length", str(len(built.body or b""))))
    # the runtime wants a body stream on every PUT, an empty one too
    body = stdio.BytesIO(built.body or b"") if built.method in ("PUT", "POST") else None
    return http.HttpRequest(built.method, path, http.HttpHeaders(headers), body)


def _tls_options(verify: bool | str | None) -> Any:
    """Return the runtime's TLS options for botocore's *verify* (see CrtClient)."""
    options = crt_io.TlsContextOptions()
    if verify is False:
        options.verify_peer = False
    elif isinstance(verify, str):
        options.override_default_trust_store_from_path(ca_filepath=verify)
    return crt_io.ClientTlsContext(options).new_connection_options()


# what awscrt reports without status or body for some error statuses (seen on
# ListObjectsV2): the status and S3 code they stand for
_STATUS_ERRORS = {
    "AWS_ERROR_S3_INTERNAL_ERROR": (500, "InternalError"),
    "AWS_ERROR_S3_SLOW_DOWN": (503, "SlowDown"),
    "AWS_ERROR_S3_REQUEST_TIME_TOO_SKEWED": (403, "RequestTimeTooSkewed"),
    "AWS_ERROR_S3_REQUEST_TIMEOUT": (400, "RequestTimeout"),
}


def _no_answer(error: BaseException, *, expired: bool, timeout: float) -> Answer:
    """Return the Answer of a request that ended with *error* and no error answer: the
    status it stands for, or the transport's failure, named."""
    name = str(getattr(error, "name", "") or type(error).__name__)
    if name in _STATUS_ERRORS and not expired:
        status, code = _STATUS_ERRORS[name]
        body = f"<Error><Code>{code}</Code><Message>{name}</Message></Error>".encode()
        return Answer(status, [], body, None)
    return Answer(None, [], b"", _failure(name, expired=expired, timeout=timeout))


def _failure(name: str, *, expired: bool, timeout: float) -> CrtFailure:
    """Return the CrtFailure of a request that got no answer, from the runtime's error
    *name* (or the watchdog's cancelling it)."""
    if expired:
        return CrtFailure("ReadTimeout", None, f"no answer in {timeout:g}s")
    if "TLS" in name or "X509" in name or "PKI" in name:
        return CrtFailure("TLSError", None, name)
    if "DNS" in name:
        return CrtFailure("DNSFailure", None, name)
    if "CONNECTION_REFUSED" in name:
        return CrtFailure("ConnectionRefused", None, name)
    return CrtFailure("ReadTimeout" if "TIMEOUT" in name else "ConnectionError", None, name)


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
