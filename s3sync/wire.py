"""GETs of small objects into files over plain HTTP, on one selector thread.

A restore of many small objects is decided by the client's CPU per request: awscrt
spends about 1 ms of this process's CPU on each (its threads hand every request and
its end across with futex wake-ups), a lean HTTP/1.1 client on one thread about 0.15 ms
(measured on 20,000 objects). So for an ``http://`` endpoint (a local or in-house
server) small downloads go through this client: a few keep-alive connections, each
sending one signed GET after another, all driven by one thread that writes each body
into its file. Anything else (``https://``, large objects, the retries of a failure)
goes through awscrt or botocore as before; a failure here is told like awscrt's, so the
caller retries it there.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import hmac
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from s3sync.crt import UNRESERVED, Credentials, CrtFailure, addressing, answered_headers, telling

Finished = Callable[[list[tuple[str, str]] | CrtFailure], None]
Post = Callable[[Callable[[], object]], None]
_ERROR_BODY_MAX = 64 * 1024  # of an error answer, kept for its <Code>
_RECV = 256 * 1024


def usable(endpoint: str) -> bool:
    """Return whether this client can reach *endpoint*: plain HTTP, unless turned off
    with ``S3SYNC_WIRE=0`` (TLS stays with awscrt)."""
    return os.environ.get("S3SYNC_WIRE", "1") != "0" and urlsplit(endpoint).scheme == "http"


class Signer:
    """Signs GET requests with AWS Signature Version 4 for S3 (the payload unsigned, as
    a GET has none); the key derived from the secret is kept for its day."""

    def __init__(self, region: str, credentials: Credentials) -> None:
        self._region = region
        self._credentials = credentials
        self._keys: dict[tuple[str, str], bytes] = {}

    def headers(self, host: str, path: str, now: float) -> str:
        """Return the header lines (each ending CRLF) that sign a GET of *path* (already
        URL-encoded, no query) on *host* at the epoch time *now*."""
        key_id, secret, token = self._credentials()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        day = stamp[:8]
        scope = f"{day}/{self._region}/s3/aws4_request"
        names = "host;x-amz-content-sha256;x-amz-date"
        canonical = f"host:{host}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:{stamp}\n"
        extra = ""
        if token:
            names += ";x-amz-security-token"
            canonical += f"x-amz-security-token:{token}\n"
            extra = f"x-amz-security-token: {token}\r\n"
        request = f"GET\n{path}\n\n{canonical}\n{names}\nUNSIGNED-PAYLOAD"
        digest = hashlib.sha256(request.encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{digest}"
        signature = hmac.new(self._key(secret, day), to_sign.encode(), hashlib.sha256)
        return (
            f"x-amz-content-sha256: UNSIGNED-PAYLOAD\r\nx-amz-date: {stamp}\r\n{extra}"
            f"Authorization: AWS4-HMAC-SHA256 Credential={key_id}/{scope}, "
            f"SignedHeaders={names}, Signature={signature.hexdigest()}\r\n"
        )

    def _key(self, secret: str, day: str) -> bytes:
        found = self._keys.get((secret, day))
        if found is None:
            key = ("AWS4" + secret).encode()
            for part in (day, self._region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret, day): key}  # one day's key: an older one is never used
            found = key
        return found


class Answer:
    """One HTTP/1.1 answer read incrementally: its status, headers, and its body handed
    to *sink* (for a 2xx) or kept, up to 64 KiB, in ``error_body``."""

    __slots__ = (
        "_chunked",
        "_head",
        "_left",
        "_raw",
        "_sink",
        "close_after",
        "done",
        "error_body",
        "headers",
        "status",
        "to_eof",
    )

    def __init__(self, sink: Callable[[bytes], object]) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.error_body = b""
        self._sink = sink
        self._head = bytearray()
        self._left = -1  # body bytes still due (of the current chunk, when chunked)
        self._chunked = False
        self._raw = bytearray()  # chunked framing not yet complete
        self.done = False
        self.close_after = False
        self.to_eof = False  # neither a length nor chunks: the body ends with the connection

    @property
    def started(self) -> bool:
        """Whether any byte of it has arrived."""
        return bool(self._head) or self.status != 0

    def feed(self, data: bytes) -> bytes:
        """Take the next bytes received; return those after the end of this answer
        (empty until it ends). Raise ValueError for an answer that is not HTTP/1.x."""
        if self.status == 0:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > 64 * 1024:
                    raise ValueError("answer headers too long")
                return b""
            data = bytes(self._head[end + 4 :])
            self._parse_head(bytes(self._head[:end]))
            self._head = bytearray()
        if self._chunked:
            return self._feed_chunked(data)
        if self.to_eof:
            self._body(data)
            return b""
        piece = data[: self._left]
        self._body(piece)
        self._left -= len(piece)
        if self._left == 0:
            self.done = True
            return data[len(piece) :]
        return b""

    def ended(self) -> None:
        """The connection closed: that ends a body read to the end; raise ValueError
        when the answer was still due bytes."""
        if self.to_eof and self.status:
            self.done = True
        else:
            raise ValueError("connection closed before the end of the answer")

    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            raise ValueError(f"not an HTTP answer: {lines[0][:60]!r}")
        self.status = int(rest[:3])
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                self.headers.append((name.strip(), value.strip()))
        named = {k.lower(): v for k, v in self.headers}
        self.close_after = named.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        if "chunked" in named.get("transfer-encoding", "").lower():
            self._chunked = True
        elif named.get("content-length", "").isdigit():
            self._left = int(named["content-length"])
            self.done = self._left == 0
        elif self.status in (204, 304) or 100 <= self.status < 200:
            self._left, self.done = 0, True
        else:
            self.to_eof = self.close_after = True

    def _feed_chunked(self, data: bytes) -> bytes:
        self._raw += data
        while True:
            if self._left > 0:
                piece = bytes(self._raw[: self._left])
                self._body(piece)
                del self._raw[: len(piece)]
                self._left -= len(piece)
                if self._left:
                    return b""
                self._left = -2  # the CRLF after the chunk is due
            if self._left == -2:
                if len(self._raw) < 2:
                    return b""
                del self._raw[:2]
                self._left = -1
            end = self._raw.find(b"\r\n")
            if end < 0:
                return b""
            size = int(bytes(self._raw[:end]).split(b";")[0].strip() or b"0", 16)
            if size == 0:  # the last chunk: trailers, then an empty line
                tail = self._raw.find(b"\r\n\r\n", end)
                if tail < 0:
                    return b""
                self.done = True
                return bytes(self._raw[tail + 4 :])
            del self._raw[: end + 2]
            self._left = size

    def _body(self, piece: bytes) -> None:
        if not piece:
            return
        if 200 <= self.status < 300:
            self._sink(piece)
        elif len(self.error_body) < _ERROR_BODY_MAX:
            self.error_body += piece[: _ERROR_BODY_MAX - len(self.error_body)]


class _Get:
    """One GET waiting for, or on, a connection: where its body goes and whom to tell."""

    __slots__ = ("fd", "key", "path", "post", "size", "told", "tries")

    def __init__(
        self, key: str, path: str, size: int, told: Callable[[dict[str, Any]], None], post: Post
    ) -> None:
        self.key = key
        self.path = path
        self.size = size
        self.told = told
        self.post = post
        self.fd = -1
        self.tries = 0


class _Connection:
    """One keep-alive connection and the GET on it, if any."""

    __slots__ = ("answer", "deadline", "get", "out", "sock", "used", "writing")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.get: _Get | None = None
        self.answer: Answer | None = None
        self.out = b""
        self.deadline = 0.0
        self.used = False  # it has carried an answer: the server may close it while idle
        self.writing = False  # waiting for room to send the rest of ``out``


class WireClient:
    """Small GETs into files from any thread, each told through a callback; the
    requests queue for up to *connections* keep-alive connections, all served by one
    daemon thread started on the first request."""

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        region: str,
        credentials: Credentials,
        timeout: float,
        path_style: bool,
        connections: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(endpoint)
        assert parts.scheme == "http" and parts.hostname, endpoint
        self._host, self._prefix = addressing(endpoint, bucket, path_style=path_style)
        host = parts.hostname if self._host == parts.netloc else f"{bucket}.{parts.hostname}"
        self._address = (host, parts.port or 80)
        self._signer = Signer(region, credentials)
        self._timeout = timeout
        self._max = max(1, connections)
        self._clock = clock
        self._queue: collections.deque[_Get] = collections.deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._asleep = False  # in select(), or about to be: a new GET must wake it
        self._woken = False  # a wake-up was sent and not yet read
        self._closed = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._idle: list[_Connection] = []
        self._outbox: list[tuple[_Get, dict[str, Any]]] = []  # ends of this round, to post
        self._busy: set[_Connection] = set()

    def get_to_file(self, key: str, path: str, size: int, finished: Finished, post: Post) -> None:
        """Write *key* (listed with *size* bytes) into the file *path*, created or
        truncated; at the end, ``post`` a call of *finished* with the answer's headers or
        the CrtFailure, as ``CrtClient.get_to_file`` does. The file may be left behind
        after a failure."""

        self._queue.append(_Get(key, path, size, telling(finished, answered_headers), post))
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="s3sync-wire", daemon=True
                    )
                    self._thread.start()
        if self._asleep and not self._woken:  # one wake-up per wait, not one per GET
            self._woken = True
            with contextlib.suppress(BlockingIOError):  # full of wake-ups: it will wake
                self._wake_w.send(b"\0")

    def close(self) -> None:
        """Stop the thread and close the connections; a GET still queued or on its way
        is told as failed."""
        self._closed = True
        with _quiet():
            self._wake_w.send(b"\0")
        thread = self._thread
        if thread is not None:
            thread.join(self._timeout)
        else:
            self._shut()

    def _shut(self) -> None:
        for conn in [*self._busy, *self._idle]:
            get = conn.get
            self._drop(conn)
            if get is not None:
                self._tell(get, _failure("ConnectionError", "the client was closed"))
        while self._queue:
            self._tell(self._queue.popleft(), _failure("ConnectionError", "the client was closed"))
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
        self._post()

    def _run(self) -> None:
        while not self._closed:
            self._dispatch()
            self._asleep = True
            # a request queued after the dispatch, before the flag was seen, waits no longer
            timeout = 0.0 if self._queue and self._idle_or_room() else self._wait()
            events = self._selector.select(timeout)
            self._asleep = False
            for found, mask in events:
                if found.data is None:
                    with _quiet():
                        while self._wake_r.recv(4096):
                            pass
                    self._woken = False  # after the read: a later GET must send another
                elif mask & selectors.EVENT_WRITE:
                    self._send(found.data)
                else:
                    self._receive(found.data)
            self._expire()
            self._post()
        self._shut()

    def _idle_or_room(self) -> bool:
        return bool(self._idle) or len(self._busy) < self._max

    def _wait(self) -> float | None:
        if not self._busy:
            return None
        return max(0.0, min(c.deadline for c in self._busy) - time.monotonic())

    def _dispatch(self) -> None:
        while self._queue and self._idle_or_room():
            get = self._queue.popleft()
            try:
                conn = self._idle.pop() if self._idle else self._connect()
            except OSError as exc:
                self._tell(get, _failure("ConnectionError", f"cannot connect: {exc}"))
                continue
            self._start(conn, get)

    def _connect(self) -> _Connection:
        sock = socket.create_connection(self._address, timeout=min(10.0, self._timeout))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        conn = _Connection(sock)
        self._selector.register(sock, selectors.EVENT_READ, conn)
        return conn

    def _start(self, conn: _Connection, get: _Get) -> None:
        get.tries += 1
        conn.get = get
        path = self._prefix + quote(get.key, safe=UNRESERVED)
        signed = self._signer.headers(self._host, path, self._clock())
        conn.out = f"GET {path} HTTP/1.1\r\nHost: {self._host}\r\n{signed}\r\n".encode()
        conn.answer = Answer(lambda piece: self._write(get, piece))
        # the whole request gets the timeout plus time for its bytes at a slow 64 KiB/s
        conn.deadline = time.monotonic() + self._timeout + get.size / 65536
        self._busy.add(conn)
        self._send(conn)

    def _write(self, get: _Get, piece: bytes) -> None:
        if get.fd < 0:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
            get.fd = os.open(get.path, flags, 0o666)  # as any new file: the umask decides
        view = memoryview(piece)
        while view:
            view = view[os.write(get.fd, view) :]

    def _send(self, conn: _Connection) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._broken(conn, exc)
            return
        conn.out = conn.out[sent:]
        if bool(conn.out) != conn.writing:  # a request rarely outgrows the socket's buffer
            conn.writing = bool(conn.out)
            events = selectors.EVENT_WRITE if conn.writing else selectors.EVENT_READ
            self._selector.modify(conn.sock, events, conn)

    def _receive(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(_RECV)
        except BlockingIOError:
            return
        except OSError as exc:
            self._broken(conn, exc)
            return
        answer, get = conn.answer, conn.get
        if answer is None or get is None:  # the server closed (or wrote to) an idle one
            self._drop(conn)
            return
        try:
            if not data:
                answer.ended()
            else:
                rest = answer.feed(data)
                if rest:
                    raise ValueError("more bytes than the answer said")
        except ValueError as exc:
            self._broken(conn, exc)
            return
        except OSError as exc:  # the file could not be written: the retry tells why
            self._finish(conn, _failure("ConnectionError", f"cannot write: {exc}"))
            self._drop(conn)
            return
        if answer.done:
            self._finish(conn, _told(answer))
            if answer.close_after or not data:
                self._drop(conn)
            else:
                conn.used = True
                self._idle.append(conn)

    def _broken(self, conn: _Connection, exc: BaseException) -> None:
        """The connection failed: a GET that got no byte back on a connection that had
        served before (the server closed it while idle) is sent again on a new one;
        any other is told as failed."""
        get, answer = conn.get, conn.answer
        self._drop(conn)
        if get is None:
            return
        if conn.used and answer is not None and not answer.started and get.tries == 1:
            self._queue.appendleft(get)
            return
        code = "IncompleteRead" if answer is not None and answer.status else "ConnectionError"
        self._tell(get, _failure(code, str(exc) or type(exc).__name__))

    def _expire(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self._busy if c.deadline <= now]:
            get = conn.get
            self._drop(conn)
            if get is not None:
                self._tell(get, _failure("ReadTimeout", f"no answer in {self._timeout:g}s"))

    def _finish(self, conn: _Connection, told: dict[str, Any]) -> None:
        get, answer = conn.get, conn.answer
        conn.get, conn.answer = None, None
        self._busy.discard(conn)
        if get is None:
            return
        if answer is not None and 200 <= answer.status < 300 and get.fd < 0:
            try:
                self._write(get, b"")  # an empty body still makes the file
            except OSError as exc:
                told = _failure("ConnectionError", f"cannot write: {exc}")
        self._tell(get, told)

    def _drop(self, conn: _Connection) -> None:
        self._busy.discard(conn)
        if conn in self._idle:
            self._idle.remove(conn)
        with _quiet():
            self._selector.unregister(conn.sock)
        conn.sock.close()

    def _tell(self, get: _Get, told: dict[str, Any]) -> None:
        if get.fd >= 0:
            with _quiet():
                os.close(get.fd)
            get.fd = -1
        self._outbox.append((get, told))

    def _post(self) -> None:
        """Hand the ends of this round to the threads that wait for them: one post per
        thread, not one per GET (each post may wake a thread)."""
        by_post: dict[Post, list[tuple[_Get, dict[str, Any]]]] = {}
        for get, told in self._outbox:
            by_post.setdefault(get.post, []).append((get, told))
        self._outbox.clear()
        for post, ends in by_post.items():
            post(functools.partial(_tell_all, ends))


def _tell_all(ends: list[tuple[_Get, dict[str, Any]]]) -> None:
    for get, told in ends:
        get.told(told)


def _failure(code: str, detail: str) -> dict[str, Any]:
    """What a request that got no whole answer tells: ``answered_etag`` raises the
    CrtFailure with *code* (ReadTimeout, ConnectionError, IncompleteRead)."""
    return {"failure": CrtFailure(code, None, detail)}


def _told(answer: Answer) -> dict[str, Any]:
    return {"status": answer.status, "headers": answer.headers, "error_body": answer.error_body}


def _quiet() -> contextlib.suppress:
    """Ignore the failure of closing or forgetting what is already gone."""
    return contextlib.suppress(OSError, KeyError, ValueError)
