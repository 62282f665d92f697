"""Header rules, --header lines and the digest: which headers each object is sent with."""

from __future__ import annotations

import functools
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3sync.errors import ConfigError
from s3sync.headers import (
    HeaderRule,
    Headers,
    digest,
    gzipped_digest,
    parse_header,
    rule_from_table,
)


def test_header_lines_map_to_what_s3_keeps() -> None:
    assert parse_header("Cache-Control: max-age=60") == ("field", "CacheControl", "max-age=60")
    assert parse_header("x-amz-storage-class: STANDARD_IA") == (
        "field",
        "StorageClass",
        "STANDARD_IA",
    )
    assert parse_header("X-Amz-Meta-Owner: ops") == ("metadata", "owner", "ops")
    assert parse_header("Website-Redirect-Location: /x/")[1] == "WebsiteRedirectLocation"
    for bad in ("Strict-Transport-Security: max-age=1", "Cache-Control", ": x", "X-Amz-Meta-: v"):
        with pytest.raises(ConfigError):
            parse_header(bad)


def test_first_rule_wins_over_header_lines_and_the_forced_type_over_all() -> None:
    rules = [
        rule_from_table({"match": "*.html", "cache-control": "short"}, "r1"),
        rule_from_table({"match": "docs/", "cache-control": "long", "metadata": {"A": "1"}}, "r2"),
    ]
    headers = Headers(rules, ["Cache-Control: default", "x-amz-meta-b: 2"])
    guessed: list[str] = []

    def guess() -> str:
        guessed.append("called")
        return "text/plain"

    assert headers.for_path("docs/page.html", guess) == (
        {"CacheControl": "short", "ContentType": "text/plain"},
        {"b": "2"},
    )
    assert headers.for_path("docs/img.png", guess)[0]["CacheControl"] == "long"
    assert headers.for_path("docs/img.png", guess)[1] == {"a": "1", "b": "2"}
    assert headers.for_path("top.png", guess)[0]["CacheControl"] == "default"
    forced = Headers(rules, content_type="application/x-forced")
    calls = len(guessed)
    assert forced.for_path("docs/page.html", guess)[0]["ContentType"] == "application/x-forced"
    assert len(guessed) == calls  # nothing is sniffed when the type is forced


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"cache-control": "x"}, "needs match"),
        ({"match": "*.html", "cache-kontrol": "x"}, "unknown key 'cache-kontrol'"),
        ({"match": "*.html", "cache-control": 60}, "must be a string"),
        ({"match": "*.html", "metadata": {"a": 1}}, "table of strings"),
        ({"match": "*.html", "metadata": {"a b": "1"}}, "letters, digits"),
        ({"match": "[x"}, "not a valid glob"),
    ],
)
def test_bad_rule_tables_name_where(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^here: ") as caught:
        rule_from_table(table, "here")
    assert message in str(caught.value)


def test_digest_is_stable_and_sees_every_change() -> None:
    base = digest({"ContentType": "text/html", "CacheControl": "a"}, {"x": "1"})
    assert base == digest({"CacheControl": "a", "ContentType": "text/html"}, {"x": "1"})
    assert (
        len(
            {
                base,
                digest({"ContentType": "text/html"}, {"x": "1"}),
                digest({"ContentType": "text/html", "CacheControl": "a"}, {"x": "2"}),
            }
        )
        == 3
    )


_HEADERS = st.dictionaries(st.text(), st.text(), max_size=4)


@given(_HEADERS, _HEADERS)
def test_digest_is_the_one_objects_already_carry(
    fields: dict[str, str], metadata: dict[str, str]
) -> None:
    """The digest is written without json or hashlib; objects pushed before carry the
    one they made, so it must not change: a changed digest re-sends every object."""
    canonical = json.dumps([sorted(fields.items()), sorted(metadata.items())])
    expected = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    gzip = "+gzip" if fields.get("ContentEncoding") == "gzip" else ""
    assert digest(fields, metadata) == expected + gzip


def test_digest_of_known_headers_is_the_recorded_value() -> None:
    """A literal from an object s3sync pushed: any change to the digest's making shows."""
    assert digest({"ContentType": "text/html; charset=utf-8"}, {}) == "aba934d26bd191c0"


def test_gzip_covers_text_extensions_and_rules_switch_it_per_path() -> None:
    rules = [
        rule_from_table({"match": "*.wasm", "gzip": True}, "r1"),
        rule_from_table({"match": "raw/", "gzip": False}, "r2"),
        rule_from_table({"match": "*.md", "cache-control": "x"}, "r3"),
    ]
    headers = Headers(rules, gzip=True)
    assert [headers.gzipped(p) for p in ("a.HTML", "s.css", "x.wasm", "raw/a.css", "i.png")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert headers.gzipped("notes.md") is False  # a rule without gzip: the default list
    fields, _ = headers.for_path("app.js", lambda: "text/javascript")
    assert fields["ContentEncoding"] == "gzip"
    assert "ContentEncoding" not in headers.for_path("i.png", lambda: "image/png")[0]
    off = Headers(rules)  # no --gzip: only a rule's gzip = true compresses
    assert off.gzipped("x.wasm") and not off.gzipped("a.html") and off.may_gzip
    assert not Headers().may_gzip and not Headers().gzipped("a.html")


def test_the_digest_says_whether_the_object_is_compressed() -> None:
    plain = digest({"ContentType": "text/css"}, {})
    packed = digest({"ContentType": "text/css", "ContentEncoding": "gzip"}, {})
    assert not gzipped_digest(plain) and gzipped_digest(packed) and not gzipped_digest(None)
    assert packed.removesuffix("+gzip") != plain


def test_gzip_in_a_rule_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="gzip must be true or false"):
        rule_from_table({"match": "*.js", "gzip": "yes"}, "r1")


_RULES = [
    rule_from_table({"match": "*.html", "cache-control": "short", "gzip": True}, "r1"),
    rule_from_table({"match": "img/", "content-type": "image/x-set"}, "r2"),
    rule_from_table({"match": "docs/", "metadata": {"a": "1"}, "gzip": False}, "r3"),
]


@given(
    order=st.permutations(
        [
            (path, kind)
            for path in ("a.html", "img/a.png", "img/a.css", "docs/a.css", "docs/a.html", "c")
            for kind in ("text/css", "image/png", "application/octet-stream")
        ]
    ),
    rules=st.sampled_from([[], _RULES]),
    lines=st.sampled_from([[], ["Cache-Control: default"], ["Content-Type: text/x-set"]]),
    forced=st.sampled_from([None, "application/x-forced"]),
    gzip=st.booleans(),
)
def test_the_remembered_digest_is_the_digest_of_the_headers(
    order: list[tuple[str, str]],
    rules: list[HeaderRule],
    lines: list[str],
    forced: str | None,
    gzip: bool,
) -> None:
    headers = Headers(rules, lines, content_type=forced, gzip=gzip)
    for relpath, guessed in order + order:  # the second time from what it remembers
        guess = functools.partial(str, guessed)
        expected = digest(*headers.for_path(relpath, guess))
        assert headers.digest_for(relpath, guess) == expected
