"""Local ETags: single-part MD5, multipart MD5-of-MD5s, part-size candidates, the cache."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3sync.diff import Compare, push_rule
from s3sync.etags import (
    MIB,
    EtagHasher,
    cached_verdict,
    candidate_part_sizes,
    multipart_etag,
    parts_of,
    same_content,
    used_part_size,
)
from s3sync.model import Reason, Stat


def test_multipart_etag_matches_what_seaweedfs_computed() -> None:
    # uploaded by hand to SeaweedFS as two parts: 5 MiB of "x", then 100 bytes of "y"
    hasher = EtagHasher([5 * MIB])
    hasher.update(b"x" * (5 * MIB))
    hasher.update(b"y" * 100)
    assert hasher.multipart(5 * MIB) == '"b80965183800174acbfed42ed19781c2-2"'


def test_multipart_etag_from_the_parts_etags_is_the_one_the_hasher_computes() -> None:
    x, y = (f'"{hashlib.md5(b).hexdigest()}"' for b in (b"x" * (5 * MIB), b"y" * 100))
    assert multipart_etag([x, y]) == '"b80965183800174acbfed42ed19781c2-2"'
    assert multipart_etag([x, '"not-an-md5"']) is None
    assert multipart_etag([x, '"abcd"']) is None


def test_single_part_etag_is_the_md5() -> None:
    hasher = EtagHasher()
    hasher.update(b"hello")
    assert hasher.single() == '"5d41402abc4b2a76b9719d911017c592"'


@settings(derandomize=True, max_examples=100)
@given(
    st.binary(max_size=5000),
    st.lists(st.integers(1, 700), min_size=1, max_size=20),
    st.integers(1, 1000),
)
def test_chunking_never_changes_the_etag(data: bytes, cuts: list[int], part: int) -> None:
    whole = EtagHasher([part])
    whole.update(data)
    pieces = EtagHasher([part])
    at = 0
    for cut in cuts:
        pieces.update(data[at : at + cut])
        at += cut
    pieces.update(data[at:])
    assert pieces.multipart(part) == whole.multipart(part)
    digests = [hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part)]
    expected = hashlib.md5(b"".join(digests)).hexdigest()
    assert whole.multipart(part) == f'"{expected}-{len(digests)}"'


def test_parts_and_candidates() -> None:
    assert parts_of('"abc-3"') == 3 and parts_of('"abc"') == 0 and parts_of("") == 0
    twelve = 12 * MIB + 7
    assert candidate_part_sizes(twelve, 3, [5 * MIB]) == [5 * MIB]
    assert candidate_part_sizes(twelve, 2, [5 * MIB]) == [8 * MIB]
    assert candidate_part_sizes(twelve, 4, []) == []
    assert used_part_size(100, 8 * MIB) == 8 * MIB
    assert used_part_size(200_000 * MIB, 8 * MIB) == 20 * MIB  # grown to fit 10,000 parts
    hasher = EtagHasher([5 * MIB])
    hasher.update(b"x" * (5 * MIB) + b"y" * 100)
    assert same_content('"b80965183800174acbfed42ed19781c2-2"', hasher, [5 * MIB])
    assert not same_content('"b80965183800174acbfed42ed19781c2"', hasher, [5 * MIB])


@pytest.mark.parametrize(
    ("cached", "etag", "expected"),
    [
        ({0: '"a"'}, '"a"', True),
        ({0: '"a"'}, '"b"', False),
        ({}, '"a"', None),
        ({8 * MIB: '"m-2"'}, '"m-2"', True),
        ({8 * MIB: '"m-2"'}, '"n-2"', False),  # every fitting size known, none matches
        ({5 * MIB: '"m-2"'}, '"n-2"', None),  # 8 MiB fits too and was never computed
    ],
)
def test_cached_verdict(cached: dict[int, str], etag: str, expected: bool | None) -> None:
    assert cached_verdict(cached, etag, 12 * MIB, [8 * MIB]) is expected


T = 1_700_000_000 * 10**9


@pytest.mark.parametrize(
    ("kwargs", "local", "remote", "expected"),
    [
        ({"compare": Compare.SIZE}, Stat(1, T + 10**12), Stat(1, T), None),
        ({"compare": Compare.SIZE}, Stat(2, T), Stat(1, T), Reason.SIZE),
        ({"compare": Compare.CHECKSUM}, Stat(1, T + 10**12), Stat(1, T, '"e"'), Reason.UNVERIFIED),
        (
            {"compare": Compare.CHECKSUM, "verdict": lambda lo, re: True},
            Stat(1, T),
            Stat(1, T, '"e"'),
            None,
        ),
        (
            {"compare": Compare.CHECKSUM, "verdict": lambda lo, re: False},
            Stat(1, T),
            Stat(1, T, '"e"'),
            Reason.CONTENT,
        ),
        ({"compare": Compare.MTIME, "force": True}, Stat(1, 0), Stat(1, T), Reason.FORCED),
        ({"compare": Compare.MTIME, "ignore_existing": True}, Stat(9, T), Stat(1, T), None),
        ({"compare": Compare.MTIME, "exact": True}, Stat(1, T - 1), Stat(1, T), Reason.UNVERIFIED),
        ({"compare": Compare.MTIME, "exact": True}, Stat(1, T), Stat(1, T), None),
        ({"compare": Compare.MTIME, "exact": True}, Stat(2, T), Stat(1, T), Reason.SIZE),
        # written after LastModified minus the fudge: ambiguous, the bytes must tell
        ({"compare": Compare.MTIME}, Stat(1, T - 1), Stat(1, T), Reason.UNVERIFIED),
        # ... unless cached hashes (an index) already know them
        ({"compare": Compare.MTIME, "verdict": lambda a, b: True}, Stat(1, T), Stat(1, T), None),
        (
            {"compare": Compare.MTIME, "verdict": lambda a, b: False},
            Stat(1, T),
            Stat(1, T),
            Reason.CONTENT,
        ),
        (
            {"compare": Compare.MTIME, "verdict": lambda a, b: None},
            Stat(1, T),
            Stat(1, T),
            Reason.UNVERIFIED,
        ),
        ({"compare": Compare.MTIME, "verdict": bool}, Stat(2, T), Stat(1, T), Reason.SIZE),
        ({"compare": Compare.MTIME, "verdict": lambda a, b: False}, Stat(1, 0), Stat(1, T), None),
        ({"compare": Compare.MTIME}, Stat(1, T - 1300 * 10**9), Stat(1, T), None),
    ],
)
def test_push_rule(
    kwargs: dict[str, object], local: Stat, remote: Stat, expected: Reason | None
) -> None:
    options: dict[str, object] = {"exact": False, "fudge": 1200.0, **kwargs}
    rule = push_rule(**options)  # type: ignore[arg-type]
    assert rule(local, remote) is expected
    assert rule(local, None) is Reason.NEW
