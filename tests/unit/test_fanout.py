"""The fanned-out listing yields every key once, in key order, whatever the keys (those
that sort between directories included), the page size and the ways; an error of any
page is raised; no directory is listed whole by the first level's request."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3sync.model import Stat
from s3sync.store.fanout import Listed, fanned

# names built of characters around "/" in code point order: "-" and "." sort before
# it, "0" and "a" after, so keys sort between directories and their neighbours
SEGMENT = st.text(alphabet="-./0a", min_size=1, max_size=4).filter(lambda s: "/" not in s)
KEY = st.lists(SEGMENT, min_size=1, max_size=4).map("/".join)


class Server:
    """ListObjectsV2 over sorted keys: prefix, delimiter and pages of *page* entries."""

    def __init__(self, keys: set[str], page: int, fail_under: str | None = None) -> None:
        self.keys = sorted(keys)
        self.page = page
        self.fail_under = fail_under
        self.requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    def chain(self, prefix: str, delimiter: str | None) -> Iterator[Listed]:
        entries: list[tuple[str, bool]] = []  # (name, is a common prefix)
        for key in self.keys:
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest[: rest.index(delimiter) + 1]
                if not entries or entries[-1] != (common, True):
                    entries.append((common, True))
            else:
                entries.append((key, False))
        for start in range(0, max(len(entries), 1), self.page):
            with self.lock:
                self.requests.append((prefix, delimiter))
            if self.fail_under is not None and prefix.startswith(self.fail_under) and start:
                raise ConnectionError(f"page {start} of {prefix}")
            chunk = entries[start : start + self.page]
            yield Listed(
                [(n, Stat(1, 0)) for n, c in chunk if not c],
                [n for n, c in chunk if c],
                start + self.page < len(entries),
            )


def listed(server: Server, prefix: str, ways: int) -> list[str]:
    return [key for page in fanned(server.chain, prefix, ways=ways) for key, _ in page]


@settings(max_examples=300, deadline=None)
@given(
    keys=st.sets(KEY, max_size=40),
    prefix=st.sampled_from(["", "a/", "a", "-", "0/a/"]),
    page=st.integers(1, 5),
    ways=st.integers(2, 4),
)
def test_every_key_once_in_key_order(keys: set[str], prefix: str, page: int, ways: int) -> None:
    server = Server(keys, page)
    assert listed(server, prefix, ways) == sorted(k for k in keys if k.startswith(prefix))


def test_directories_are_listed_at_once_and_each_whole_by_one_chain() -> None:
    keys = {f"{d}/{n:02}.html" for d in "abcdef" for n in range(10)} | {"index.html"}
    server = Server(keys, page=4)
    assert listed(server, "", ways=3) == sorted(keys)
    whole = [p for p, delimiter in server.requests if delimiter is None and p]
    assert sorted(set(whole)) == [f"{d}/" for d in "abcdef"]  # one listing each
    assert len(whole) == 6 * 3  # 10 keys in pages of 4
    assert server.requests.count(("", None)) == 1  # the first page, abandoned


def test_a_listing_of_one_page_is_that_page() -> None:
    keys = {f"{d}/{n}" for d in "ab" for n in range(3)}
    server = Server(keys, page=1000)
    assert listed(server, "", ways=4) == sorted(keys)
    assert server.requests == [("", None)]  # one request: no level, no directory


def test_a_level_of_one_directory_alone_is_descended_into() -> None:
    keys = {f"site/{d}/{n}" for d in "xyz" for n in range(3)}
    server = Server(keys, page=2)
    assert listed(server, "", ways=4) == sorted(keys)
    assert ("site/", "/") in server.requests  # site/ alone at the top: its level is used
    assert {p for p, d in server.requests if d is None} == {"", "site/x/", "site/y/", "site/z/"}


def test_a_failed_page_is_raised_and_nothing_after_it_is_yielded() -> None:
    keys = {f"{d}/{n}" for d in "abc" for n in range(5)}
    server = Server(keys, page=2, fail_under="b/")
    seen: list[str] = []
    with pytest.raises(ConnectionError, match="b/"):
        for page in fanned(server.chain, "", ways=3):
            seen.extend(k for k, _ in page)
    assert seen == sorted(k for k in keys if k < "b/2")  # a/ whole, b/'s first page
