"""Reads a ListObjectsV2 answer's XML as botocore does, at a tenth of its cost.

botocore turns every listed object into a dict of parsed values before s3sync reads
four of them: listing 20,000 keys cost more CPU than walking the tree they mirror.
This module reads those four with the standard library's C ElementTree parser and
botocore's semantics: elements are matched by local name whatever namespace the server
writes (S3's, another, or none), keys are URL-decoded when the server says it encoded
them (the request asks it to, so that any byte a key may hold survives XML), and
whether a page says more follow is reported for ``remote.next_page`` to judge.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import unquote_plus

from s3sync.model import Stat


class NotAListing(ValueError):
    """The answer is not a ListObjectsV2 result (a web page, a proxy's error)."""


class ListingPage(NamedTuple):
    """One page: its objects (key, Stat with LastModified in whole seconds, as botocore
    gives it), its common prefixes, the token of the next page, and whether the server
    says more follow (``remote.next_page`` decides what a page that says so without a
    token means)."""

    objects: list[tuple[str, Stat]]
    prefixes: list[str]
    next_token: str | None
    truncated: bool = False  # more pages follow (the token says where)


def parse_page(body: bytes) -> ListingPage:
    """Return the page *body* holds; raise NotAListing for anything else."""
    from datetime import UTC, datetime  # on first use: a run from an index never lists
    from xml.etree import ElementTree as ET

    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise NotAListing(f"unreadable listing: {exc}") from None
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if root.tag != f"{ns}ListBucketResult":
        raise NotAListing(f"answer is <{root.tag.removeprefix(ns)}>, not a listing")
    decode = unquote_plus if root.findtext(f"{ns}EncodingType") == "url" else _same
    objects: list[tuple[str, Stat]] = []
    try:
        for entry in root.iterfind(f"{ns}Contents"):
            key = entry.findtext(f"{ns}Key")
            if key is None:
                raise NotAListing("a listed object has no key")
            modified = datetime.fromisoformat(entry.findtext(f"{ns}LastModified") or "")
            if modified.tzinfo is None:  # S3 writes Z; a server that writes nothing means UTC
                modified = modified.replace(tzinfo=UTC)
            objects.append(
                (
                    decode(key),
                    Stat(
                        int(entry.findtext(f"{ns}Size") or ""),
                        int(modified.timestamp()) * 10**9,
                        entry.findtext(f"{ns}ETag"),
                    ),
                )
            )
    except ValueError as exc:
        if isinstance(exc, NotAListing):
            raise
        raise NotAListing(f"unreadable listing entry: {exc}") from None
    prefixes = [
        decode(p.findtext(f"{ns}Prefix") or "") for p in root.iterfind(f"{ns}CommonPrefixes")
    ]
    token = root.findtext(f"{ns}NextContinuationToken")
    truncated = root.findtext(f"{ns}IsTruncated") == "true"
    return ListingPage(objects, prefixes, token or None, truncated)


def _same(text: str) -> str:
    return text
