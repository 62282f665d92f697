"""How many requests a run keeps in flight: up to ``--max-requests``, fewer while the
server asks for less.

A throttling answer (SlowDown, 503, 429) halves the window, once for a burst of them:
the answers to requests that were in flight at the halving say nothing new. Each time as
many requests have ended as the window holds, with no throttling, it grows by a
quarter (at least one) back towards the most.
"""

from __future__ import annotations

import threading

from s3sync.errors import RemoteError

_THROTTLED = frozenset({"SlowDown", "Throttling", "ThrottlingException", "TooManyRequests"})


def throttled(error: RemoteError) -> bool:
    """Return whether *error* is the server asking for fewer requests."""
    return error.code in _THROTTLED or error.status in (429, 503)


class Window:
    """The requests in flight allowed now (``limit``), between 1 and *most*."""

    def __init__(self, most: int) -> None:
        self.most = max(1, most)
        self.limit = self.most
        self._since_cut = 0  # requests ended since the limit was last halved
        self._burst = 0  # how many were in flight then: their answers may be throttled too
        self._since_change = 0  # and since it last changed
        self._lock = threading.Lock()  # told from the workers and the reporting thread
        self.throttled = 0  # throttling answers told
        self.narrowest = self.most  # the lowest limit yet

    def slow_down(self) -> None:
        """The server throttled a request: halve the limit, unless it was halved so
        recently that this answer is one of the same burst."""
        with self._lock:
            self.throttled += 1
            if self._since_cut < self._burst:
                return  # an answer to a request sent before the last halving
            self._burst = self.limit
            self.limit = max(1, self.limit // 2)
            self.narrowest = min(self.narrowest, self.limit)
            self._since_cut = self._since_change = 0

    def ended(self) -> None:
        """A request ended without being throttled; grow the limit after a whole
        window of them."""
        with self._lock:
            self._since_cut += 1
            self._since_change += 1
            if self._since_change >= self.limit and self.limit < self.most:
                self.limit = min(self.most, self.limit + max(1, self.limit // 4))
                self._since_change = 0
