"""The lean ListObjectsV2 reader gives what botocore's parser gave s3sync."""

from __future__ import annotations

import pytest

from s3sync.model import Stat
from s3sync.store.listing import NotAListing, parse_page

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def page(body: str, *, truncated: bool = False, encoded: bool = False) -> bytes:
    extra = "<EncodingType>url</EncodingType>" if encoded else ""
    flag = "true" if truncated else "false"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult {NS}><Name>b</Name>'
        f"<Prefix>site/</Prefix>{extra}<IsTruncated>{flag}</IsTruncated>{body}"
        "</ListBucketResult>"
    ).encode()


def entry(key: str, modified: str = "2026-11-22T03:11:49.123Z", size: int = 5) -> str:
    return (
        f"<Contents><Key>{key}</Key><LastModified>{modified}</LastModified>"
        f"<ETag>&quot;abc&quot;</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass>"
        "</Contents>"
    )


def test_objects_with_whole_second_times_quoted_etags_and_the_next_token() -> None:
    body = page(
        entry("site/a.txt")
        + entry("site/b &amp; c.txt", "2026-11-22T03:11:50Z", 0)
        + "<NextContinuationToken>tok/en==</NextContinuationToken>",
        truncated=True,
    )
    parsed = parse_page(body)
    assert parsed.objects == [
        ("site/a.txt", Stat(5, 1_795_317_109 * 10**9, '"abc"')),
        ("site/b & c.txt", Stat(0, 1_795_317_110 * 10**9, '"abc"')),
    ]
    assert parsed.next_token == "tok/en=="


def test_the_last_page_is_the_one_not_truncated_whatever_token_it_sends() -> None:
    from s3sync.store.remote import next_page

    last = parse_page(page(entry("k") + "<NextContinuationToken>x</NextContinuationToken>"))
    assert not last.truncated and next_page("b", last.truncated, last.next_token) is None
    assert parse_page(page("")).objects == []


def test_a_truncated_page_without_a_token_is_an_incomplete_listing_not_the_end() -> None:
    from s3sync.errors import Disposition, RemoteError, classify
    from s3sync.store.remote import next_page

    cut = parse_page(page(entry("k"), truncated=True))
    assert cut.truncated and cut.next_token is None
    with pytest.raises(RemoteError) as raised:
        next_page("b", cut.truncated, cut.next_token)
    assert raised.value.code == "IncompleteListing"
    assert classify(raised.value) is Disposition.FATAL  # nothing deleted, exit 3
    assert next_page("b", True, "t") == "t"


def test_url_encoded_keys_are_decoded_only_when_the_server_encoded_them() -> None:
    assert parse_page(page(entry("a%20b%0A+c%2Bd"), encoded=True)).objects[0][0] == "a b\n c+d"
    assert parse_page(page(entry("a%20b+c"))).objects[0][0] == "a%20b+c"


def test_a_time_without_zone_is_utc_and_prefixes_are_read() -> None:
    body = page(
        entry("k", "2026-11-22T03:11:49")
        + "<CommonPrefixes><Prefix>site/d%2F/</Prefix></CommonPrefixes>",
        encoded=True,
    )
    parsed = parse_page(body)
    assert parsed.objects[0][1].mtime_ns == 1_795_317_109 * 10**9
    assert parsed.prefixes == ["site/d//"]


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Welcome to the captive portal</body></html>",
        b"not xml at all",
        b"<Error><Code>AccessDenied</Code></Error>",
        page("<Contents><Size>1</Size></Contents>"),
        page(entry("k", "yesterday")),
    ],
)
def test_anything_else_is_not_a_listing(body: bytes) -> None:
    with pytest.raises(NotAListing):
        parse_page(body)


@pytest.mark.parametrize(
    "namespace",
    [
        'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"',  # S3's
        'xmlns="http://doc.s3.amazonaws.com/2006-03-01/"',  # s3rver's
        "",
    ],
)
def test_elements_are_read_by_local_name_in_any_namespace(namespace: str) -> None:
    body = page(entry("site/a.txt")).replace(NS.encode(), namespace.encode())
    assert parse_page(body).objects == [("site/a.txt", Stat(5, 1_795_317_109 * 10**9, '"abc"'))]
