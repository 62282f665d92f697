"""Links between a tool and the server, as users have them: plain HTTP or TLS, with
round-trip latency added by ``latency_proxy.js`` (node; the kernel here has no netem).

A link is named ``SCHEME/RTT``: ``http/0``, ``https/80``... The proxy sits on every
link, 0 ms included, and counts the connections each tool opened and the most it
held open at once (with HTTP/1.1, an upper bound of its requests in flight).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tools import seaweed

PROXY = Path(__file__).with_name("latency_proxy.js")
ALL = ("http/0", "http/20", "http/80", "https/0", "https/20", "https/80")


@dataclass(frozen=True)
class Connections:
    """What the proxy saw of one run: connections opened, and the most open at once."""

    opened: int
    peak: int


class Proxy:
    """A running latency proxy: its endpoint, and the connections since last asked."""

    def __init__(self, endpoint: str, rtt_ms: int) -> None:
        parts = urlsplit(endpoint)
        (port,) = seaweed._free_ports(1)
        args = ["node", str(PROXY), str(port), parts.hostname or "", str(parts.port), str(rtt_ms)]
        self._process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        if self._process.stdout.readline() != "ready\n":
            raise RuntimeError("the latency proxy did not start (is node installed?)")
        self.endpoint = f"{parts.scheme}://127.0.0.1:{port}"

    def taken(self) -> Connections:
        """Return the connections since the last call, and start counting again."""
        assert self._process.stdout is not None
        self._process.send_signal(signal.SIGUSR2)
        _, opened, _, peak = self._process.stdout.readline().split()
        return Connections(int(opened), int(peak))

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait()


def parse(text: str) -> list[tuple[str, int]]:
    """Return the (scheme, rtt ms) of each link named in *text* (comma-separated)."""
    links = []
    for name in filter(None, (t.strip() for t in text.split(","))):
        scheme, _, rtt = name.partition("/")
        if scheme not in ("http", "https") or not rtt.isdigit():
            raise ValueError(f"a link is SCHEME/RTT_MS, such as https/80: not {name!r}")
        links.append((scheme, int(rtt)))
    return links


@contextlib.contextmanager
def delayed(endpoint: str, rtt_ms: int) -> Iterator[Proxy]:
    """Yield a Proxy to *endpoint* adding *rtt_ms* of round trip."""
    proxy = Proxy(endpoint, rtt_ms)
    try:
        yield proxy
    finally:
        proxy.stop()
