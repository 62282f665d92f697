"""Filters (rsync-style globs) and the path <-> key mapping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3sync.errors import ConfigError
from s3sync.filters import Filter
from s3sync.paths import Location, ancestors, ascii_room, key_problem, parse_s3_url


@pytest.mark.parametrize(
    ("rules", "path", "included"),
    [
        ([(False, "*.tmp")], "a.tmp", False),
        ([(False, "*.tmp")], "deep/er/a.tmp", False),  # unanchored: matches at any depth
        ([(False, "*.tmp")], "a.tmpx", True),
        ([(False, "*")], "x/y", False),  # '*' excludes the directory x itself
        ([(False, "a/*.js")], "a/b/c.js", True),  # '*' stays inside one segment
        ([(False, "a/**.js")], "a/b/c.js", False),  # '**' crosses segments
        ([(False, "/build/")], "build/x.js", False),  # anchored directory
        ([(False, "/build/")], "docs/build/x.js", True),
        ([(False, "build/")], "docs/build/x.js", False),  # unanchored directory
        ([(False, "build/")], "build", True),  # a *file* named build: dir rule skips it
        ([(False, "build")], "build/x.js", False),  # no slash: files and directories
        ([(True, "keep.tmp"), (False, "*.tmp")], "keep.tmp", True),  # first match wins
        ([(False, "*.tmp"), (True, "keep.tmp")], "keep.tmp", False),
        ([(False, "file?.txt")], "file1.txt", False),
        ([(False, "file?.txt")], "file10.txt", True),
        ([(False, "[ab].txt")], "a.txt", False),
        ([(False, "[!ab].txt")], "a.txt", True),
        ([(False, "[!ab].txt")], "c.txt", False),
        ([(False, "café/")], "café/x", False),
        ([(False, "a+b(1).txt")], "a+b(1).txt", False),  # regex characters are literal
        ([(False, r"\*.txt")], "*.txt", False),
        ([(False, r"\*.txt")], "a.txt", True),
        ([(True, "*.html"), (False, "*")], "index.html", True),
        ([(True, "*/"), (True, "*.html"), (False, "*")], "a/b/index.html", True),
        ([(True, "*/"), (True, "*.html"), (False, "*")], "a/b/style.css", False),
        ([], "anything/at/all", True),
    ],
)
def test_rules(rules: list[tuple[bool, str]], path: str, included: bool) -> None:
    assert Filter(rules).included(path) is included


def test_directory_decisions_prune_the_walk() -> None:
    rules = Filter([(True, "*.html"), (False, "*")])
    assert rules.dir_included("a") is False  # rsync semantics: add --include '*/' to descend
    assert Filter([(False, "cache/")]).dir_included("x/cache") is False
    assert Filter([(False, "cache/")]).file_included("x/cache") is True


@pytest.mark.parametrize("pattern", ["[abc", "/", "", "//"])
def test_bad_patterns_are_config_errors(pattern: str) -> None:
    with pytest.raises(ConfigError, match="pattern"):
        Filter([(False, pattern)])


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://b", "b", ""),
        ("s3://b/", "b", ""),
        ("s3://b/site", "b", "site/"),
        ("s3://b/site/", "b", "site/"),
        ("s3://b/a/b/c//", "b", "a/b/c/"),
    ],
)
def test_parse_s3_url(url: str, bucket: str, prefix: str) -> None:
    assert parse_s3_url(url) == Location(bucket, prefix)


@pytest.mark.parametrize("url", ["b/site", "http://b/x", "s3://", "s3:///x"])
def test_parse_s3_url_rejects(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_s3_url(url)


@pytest.mark.parametrize(
    ("key", "relpath"),
    [
        ("site/a.html", "a.html"),
        ("site/a/b c+d%e#f?.txt", "a/b c+d%e#f?.txt"),
        ("site/", None),  # the prefix itself
        ("site/dir/", None),  # ends with '/'
        ("site/a//b", None),  # empty segment
        ("site/a/../b", None),
        ("site/./b", None),
        ("site/..", None),
        ("site/a\0b", None),
        ("other/a.html", None),  # not under the prefix
        ("sitemap.xml", None),  # shares characters, not the prefix
    ],
)
def test_relpath_of_key(key: str, relpath: str | None) -> None:
    assert Location("b", "site/").relpath(key) == relpath


@settings(derandomize=True, max_examples=300)
@given(
    st.lists(
        st.text(min_size=1).filter(
            lambda s: "/" not in s and s not in (".", "..") and "\0" not in s
        ),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from(["", "p/", "a/b/"]),
)
def test_key_and_relpath_round_trip(parts: list[str], prefix: str) -> None:
    location = Location("b", prefix)
    rel = "/".join(parts)
    assert location.relpath(location.key(rel)) == rel


def test_key_problems() -> None:
    assert key_problem("fine/é.txt") is None
    assert key_problem("a" * 1024) is None
    assert "over S3's limit" in (key_problem("a" * 1025) or "")
    assert key_problem("é" * 512) is None  # 1,024 bytes
    assert "1026 bytes" in (key_problem("é" * 513) or "")
    assert "UTF-8" in (key_problem("bad-\udcff.txt") or "")


@given(st.text(max_size=1100) | st.just("bad-\udcff/"), st.integers(0, 1100))
def test_ascii_room_is_where_keys_stop_fitting(prefix: str, length: int) -> None:
    """The walk's shortcut: an ASCII path no longer than the room needs no key_problem,
    and one character more does not fit."""
    room = ascii_room(prefix)
    relpath = "a" * length
    assert (key_problem(prefix + relpath) is None) == (length <= room)


def test_ancestors() -> None:
    assert ancestors("a/b/c.txt") == ["a", "a/b"]
    assert ancestors("c.txt") == []


def test_publish_groups_put_entry_points_last_and_follow_the_order_given() -> None:
    from s3sync.filters import ENTRY_POINTS, Groups

    default = Groups(ENTRY_POINTS)
    pages = ["index.html", "a/b.htm", "sitemap.xml", "sitemap-2.xml", "blog/feed.xml"]
    pages += ["feed.rss", "x.atom", "sw.js", "a/service-worker.js", "site.webmanifest"]
    assets = ["app.js", "style.css", "img/a.png", "html/logo.png", "sitemap.txt"]
    assert [default.of(p) for p in pages] == [1] * len(pages)
    assert [default.of(p) for p in assets] == [0] * len(assets)
    custom = Groups(["*.css, *.js", "/top.html", "img/"])
    assert len(custom) == 4
    paths = ["a.css", "b/c.js", "top.html", "a/top.html", "x.png", "img/a.png", "a/img/b/c"]
    assert [custom.of(p) for p in paths] == [1, 1, 2, 0, 0, 3, 3]


_SEGMENTS = st.sampled_from(["a", "b", "img", "x.css", "y.js", "top.html", "c"])
_GLOBS = st.sampled_from(["*.css", "*.js", "/top.html", "img/", "a/", "b/*.js", "**/c", "/a/b"])


@given(
    st.lists(st.lists(_GLOBS, min_size=1, max_size=3), min_size=1, max_size=3),
    st.lists(st.lists(_SEGMENTS, min_size=1, max_size=4).map("/".join), max_size=30),
)
@settings(max_examples=300, deadline=None)
def test_publish_group_is_the_first_whose_glob_covers_the_path_or_a_directory(
    groups: list[list[str]], paths: list[str]
) -> None:
    from s3sync.filters import Groups, compile_rule, covers

    order = Groups([",".join(g) for g in groups])
    for path in paths:  # one Groups for all: what it remembers of directories must hold
        expected = next(
            (
                n
                for n, g in enumerate(groups, 1)
                if any(covers(compile_rule(True, x), path) for x in g)
            ),
            0,
        )
        assert order.of(path) == expected, path


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8333", "http://127.0.0.1:8333"),
        ("http://127.0.0.1:8333/", "http://127.0.0.1:8333"),  # one endpoint, either way
        ("HTTP://Host.Example:9000//", "http://host.example:9000"),
        ("http://user:secret@127.0.0.1:8333/", "http://127.0.0.1:8333"),  # never echoed
        ("https://[::1]:9000/", "https://[::1]:9000"),
        ("http://user:secret@host:notaport", "host:notaport"),
    ],
)
def test_endpoint_shown_without_password_or_trailing_slash(url: str, shown: str) -> None:
    from s3sync.paths import endpoint_shown

    assert endpoint_shown(url) == shown
