"""A loopback HTTP proxy in front of SeaweedFS that answers chosen requests with errors.

Requests pass through byte for byte (the Host header too, so signatures still verify);
a rule decides, per request, whether to answer with a fault instead.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeAlias
from urllib.parse import urlsplit

SLOW_DOWN = (
    503,
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>",
)
INTERNAL = (
    500,
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error.</Message></Error>",
)


@dataclass(frozen=True)
class Stall:
    """Forward the request, send the answer's first *after* body bytes, then hang."""

    after: int


@dataclass(frozen=True)
class Truncate:
    """Forward the request, send the answer's first *after* body bytes, then close."""

    after: int


@dataclass(frozen=True)
class Reset:
    """Reset the connection without answering; *applied*: after the server did the work."""

    applied: bool = False


@dataclass(frozen=True)
class Silence:
    """Take the request and never answer (until the proxy closes)."""


@dataclass(frozen=True)
class Hold:
    """Wait until *release* is set (``proxy.stalled`` tells it is waiting), then forward."""

    release: threading.Event


@dataclass(frozen=True)
class Flip:
    """Forward the request with one byte of its body changed (on the wire, after the
    client computed its checksums), and the server's answer as it is; *answer*: the
    request as it is, and the answer's body with one byte changed."""

    answer: bool = False


@dataclass(frozen=True)
class Pause:
    """Forward the request after *seconds*, as a distant server would answer it; the
    proxy counts how many paused requests are in flight at once (``peak``). With
    *most*, a request that would make more than that many answers SlowDown at once, as
    a server at its capacity does (``throttled`` counts them)."""

    seconds: float
    most: int = 0


@dataclass(frozen=True)
class Relabel:
    """Forward the request, but tell the client the object's ETag is *etag* (as a server
    that stored other bytes than it was sent would)."""

    etag: str


# (status, body) or (status, body, extra headers) answered instead of the server
Answer: TypeAlias = tuple[int, bytes] | tuple[int, bytes, tuple[tuple[str, str], ...]]
Fault: TypeAlias = Answer | Stall | Truncate | Reset | Silence | Hold | Flip | Relabel | Pause


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it, and whether it was faulted."""

    method: str
    path: str
    faulted: bool
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


Rule = Callable[[str, str, int], Fault | None]  # (method, path, n)


class FaultProxy:
    """Forwards to *upstream*; ``rule(method, path, n)`` may return (status, body) instead."""

    def __init__(self, upstream: str, rule: Rule) -> None:
        target = urlsplit(upstream)
        self.rule = rule
        self.seen: list[Seen] = []
        self.stalled = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self.paused = 0  # Pause requests in flight now, and the most at once
        self.peak = 0
        self.throttled = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    n = len(proxy.seen)
                    fault = proxy.rule(self.command, self.path, n)
                    proxy.seen.append(
                        Seen(
                            self.command,
                            self.path,
                            fault is not None,
                            body[:65536],
                            tuple((k.lower(), v) for k, v in self.headers.items()),
                        )
                    )
                if isinstance(fault, Pause):
                    with proxy._lock:
                        full = 0 < fault.most <= proxy.paused
                        proxy.throttled += full
                        if not full:
                            proxy.paused += 1
                            proxy.peak = max(proxy.peak, proxy.paused)
                    if full:
                        self._answer(*SLOW_DOWN)
                        return
                    try:
                        time.sleep(fault.seconds)
                        self._forward(body, None)
                    finally:
                        with proxy._lock:
                            proxy.paused -= 1
                    return
                if isinstance(fault, Hold):
                    proxy.stalled.set()
                    while not fault.release.wait(0.05) and not proxy._closing.is_set():
                        pass
                elif isinstance(fault, Silence):
                    proxy._closing.wait()
                    self.close_connection = True
                    return
                elif isinstance(fault, Reset) and not fault.applied:
                    self._reset()
                    return
                elif isinstance(fault, tuple):
                    status, payload, *more = fault
                    self._answer(status, payload, more[0] if more else ())
                    return
                self._forward(body, fault)

            def _answer(
                self, status: int, payload: bytes, extra: tuple[tuple[str, str], ...] = ()
            ) -> None:
                """Answer with *status* and the XML *payload*, the server never asked."""
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra:
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _forward(self, body: bytes, fault: Fault | None) -> None:
                """Send the request to the server; pass its answer on, as *fault* says."""
                if isinstance(fault, Flip) and body and not fault.answer:
                    middle = len(body) // 2
                    body = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
                conn = http.client.HTTPConnection(target.netloc, timeout=60)
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    conn.putheader(name, value)
                conn.endheaders(body)
                answer = conn.getresponse()
                data = answer.read()
                conn.close()
                if isinstance(fault, Reset):  # the server did the work; the client never hears
                    self._reset()
                    return
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        if isinstance(fault, Relabel) and name.lower() == "etag":
                            value = fault.etag
                        self.send_header(name, value)
                # a HEAD answer has no body but tells the object's length: pass it on
                told = answer.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", told or str(len(data)))
                self.end_headers()
                if isinstance(fault, Truncate):
                    self.wfile.write(data[: fault.after])
                    self._reset()
                    return
                if isinstance(fault, Flip) and fault.answer and data:
                    middle = len(data) // 2
                    data = data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
                if isinstance(fault, Stall):
                    self.wfile.write(data[: fault.after])
                    self.wfile.flush()
                    proxy.stalled.set()
                    proxy._closing.wait()
                    self.close_connection = True  # the client sees the body cut short
                    return
                self.wfile.write(data)

            def _reset(self) -> None:
                """Close the connection with a TCP reset: the client hears no answer."""
                self.wfile.flush()
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"

    def faulted(self) -> list[Seen]:
        """Return the requests that got a fault."""
        with self._lock:
            return [s for s in self.seen if s.faulted]


@contextmanager
def fault_proxy(upstream: str, rule: Rule) -> Iterator[FaultProxy]:
    """Run a FaultProxy for the duration of the block."""
    proxy = FaultProxy(upstream, rule)
    thread = threading.Thread(target=proxy._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy._closing.set()
        proxy._server.shutdown()
        proxy._server.server_close()
