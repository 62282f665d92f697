"""Listing a prefix several directories at once, in key order.

A listing is a chain of pages, one round trip each: at 80 ms, 50 pages of 1,000 keys
wait 4 s. ``fanned`` asks for the listing's first page: when it is the only one, it is
the listing, one request as ever. Otherwise it asks for the prefix's first level (the
delimiter ``/``: the objects right under it and its "directories", common prefixes),
and lists up to *ways* directories at once, each on a thread of its own, yielding
their pages in key order as one listing would: a directory's keys are contiguous in
that order (a key between two of them would have to start with the first one, ``/``
included, and so lie under it). The first page is not used then: it was read in the
server's order, which need not be the first level's. Memory stays flat: each directory
listed ahead of the one being yielded holds at most a few pages.

Every key is yielded once: a key with a ``/`` after the prefix lies under exactly one
common prefix, one without is listed among the objects. When the first level is a
single directory and nothing else, its own first level is used instead. No page of one
listing is mixed with another's: the key orders of servers differ (SeaweedFS lists
``a/b`` before ``a-b``), and no key is dropped or skipped by comparing keys.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Iterator
from typing import NamedTuple

from s3sync.model import Stat

Page = list[tuple[str, Stat]]


class Listed(NamedTuple):
    """One page of a listing: its objects, its common prefixes (with a delimiter), and
    whether more pages follow."""

    objects: Page
    prefixes: list[str]
    more: bool


# chain(prefix, delimiter): the pages of one listing, in the server's order
Chain = Callable[[str, str | None], Iterator[Listed]]

AHEAD_PAGES = 4  # pages a directory listed ahead may hold before its thread waits
_DESCENT = 8  # single directories descended into, at most
_WAIT = 0.1  # seconds between looks at whether the listing was abandoned


class _End:
    """A directory's listing ended (with the error it raised, if any)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def fanned(chain: Chain, prefix: str, *, ways: int) -> Iterator[Page]:
    """Yield the objects under *prefix*, a page at a time and in key order, listing up
    to *ways* directories at once (see the module). An error of any page is raised
    where that page would have been yielded; what is left is abandoned: its threads
    (daemons, so that one left waiting never holds the process) end at their next page."""
    page = next(chain(prefix, None))
    if not page.more:  # a listing of one page is that page: one request, as ever
        yield page.objects
        return
    stop = threading.Event()
    try:
        yield from _in_order(chain, _units(chain, prefix), stop, ways)
    finally:
        stop.set()  # threads waiting to hand a page over give up


def _spawn(target: Callable[..., None], *args: object) -> None:
    threading.Thread(target=target, args=args, name="s3sync-list", daemon=True).start()


def _in_order(
    chain: Chain, units: Iterator[Page | str], stop: threading.Event, ways: int
) -> Iterator[Page]:
    """Yield the pages of *units* in order: a page as it is, a directory listed whole
    on a thread of its own (up to *ways* ahead of the one being yielded)."""
    ahead: collections.deque[Page | queue.Queue[Page | _End]] = collections.deque()
    listing = 0  # directories in *ahead*
    while True:
        # more of the level only while no page is ready: reading it may wait on the server
        while (
            listing < ways and len(ahead) < 2 * ways and not (ahead and isinstance(ahead[0], list))
        ):
            unit = next(units, None)
            if unit is None:
                break
            if isinstance(unit, str):
                pages: queue.Queue[Page | _End] = queue.Queue(AHEAD_PAGES)
                _spawn(_list, chain, unit, pages, stop)
                ahead.append(pages)
                listing += 1
            else:
                ahead.append(unit)
        if not ahead:
            return
        head = ahead.popleft()
        if isinstance(head, list):
            yield head
            continue
        listing -= 1
        while not isinstance(item := head.get(), _End):
            yield item
        if item.error is not None:
            raise item.error


def _units(chain: Chain, prefix: str) -> Iterator[Page | str]:
    """Yield the first level of *prefix* in key order: runs of objects as pages, and
    directories by name; a level that is one directory alone is descended into."""
    for _ in range(_DESCENT):
        pages = chain(prefix, "/")
        page = next(pages)
        if page.objects or len(page.prefixes) != 1 or page.more:
            yield from _merged(page)
            for more in pages:
                yield from _merged(more)
            return
        prefix = page.prefixes[0]
    yield prefix  # deeper than that: listed whole


def _merged(page: Listed) -> Iterator[Page | str]:
    """Yield one delimited page's objects and directories in key order (objects next to
    each other as one page). Only the order of what is yielded depends on comparing
    keys, never what is."""
    run: Page = []
    names = iter(page.prefixes)
    name = next(names, None)
    for entry in page.objects:
        while name is not None and name < entry[0]:
            if run:
                yield run
                run = []
            yield name
            name = next(names, None)
        run.append(entry)
    if run:
        yield run
    while name is not None:
        yield name
        name = next(names, None)


def _list(
    chain: Chain, prefix: str, pages: queue.Queue[Page | _End], stop: threading.Event
) -> None:
    """List *prefix* whole into *pages*, then an _End; stop when *stop* is set."""
    try:
        for listed in chain(prefix, None):
            while not stop.is_set():
                try:
                    pages.put(listed.objects, timeout=_WAIT)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
    except BaseException as exc:  # handed over: the reader raises it in order
        pages.put(_End(exc))
        return
    pages.put(_End())
