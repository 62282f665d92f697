"""The lean GET client's pure parts: its SigV4 signature (botocore's is the reference)
and its incremental reading of HTTP/1.1 answers, however the bytes are cut."""

from __future__ import annotations

import datetime
import itertools
from unittest import mock

import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3sync.wire import Answer, Signer, usable

NOW = datetime.datetime(2026, 11, 22, 10, 30, 5)  # botocore's clock is naive UTC
EPOCH = NOW.replace(tzinfo=datetime.UTC).timestamp()


def botocore_headers(
    host: str, path: str, key: str, secret: str, token: str | None
) -> dict[str, str]:
    request = botocore.awsrequest.AWSRequest(method="GET", url=f"http://{host}{path}")
    request.context["client_config"] = botocore.config.Config(s3={"payload_signing_enabled": False})
    signer = botocore.auth.S3SigV4Auth(
        botocore.credentials.Credentials(key, secret, token), "s3", "eu-west-3"
    )
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=NOW):
        signer.add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


def ours(host: str, path: str, key: str, secret: str, token: str | None) -> dict[str, str]:
    lines = Signer("eu-west-3", lambda: (key, secret, token)).headers(host, path, EPOCH)
    assert lines.endswith("\r\n")
    return {
        name.lower(): value
        for name, _, value in (line.partition(": ") for line in lines[:-2].split("\r\n"))
    }


@given(
    path=st.text(alphabet="abcXYZ019-_.~/%", min_size=1, max_size=40).map(lambda p: "/b/" + p),
    token=st.none() | st.text(alphabet="ABCdef0123+/=", min_size=1, max_size=30),
)
def test_the_signature_is_botocores(path: str, token: str | None) -> None:
    host = "127.0.0.1:8333"
    want = botocore_headers(host, path, "AKID", "secret/key+1", token)
    got = ours(host, path, "AKID", "secret/key+1", token)
    assert got["authorization"] == want["authorization"]
    assert got["x-amz-date"] == want["x-amz-date"] == "20261122T103005Z"
    assert got["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert got.get("x-amz-security-token") == want.get("x-amz-security-token") == token


def test_a_new_day_signs_with_a_new_key() -> None:
    signer = Signer("us-east-1", lambda: ("AKID", "s", None))
    today = signer.headers("h", "/b/k", EPOCH)
    tomorrow = signer.headers("h", "/b/k", EPOCH + 86400)
    assert "/20261122/us-east-1/s3/aws4_request" in today
    assert "/20261123/us-east-1/s3/aws4_request" in tomorrow
    assert today.rsplit("Signature=", 1)[1] != tomorrow.rsplit("Signature=", 1)[1]


def read(raw: bytes, cuts: list[int]) -> tuple[Answer, bytes, bytes]:
    """Feed *raw* cut at *cuts*; return the answer, the body sunk, and what was left."""
    body = bytearray()
    answer = Answer(body.extend)
    rest = b""
    edges = sorted({0, len(raw), *(c % (len(raw) + 1) for c in cuts)})
    for first, last in itertools.pairwise(edges):
        if answer.done:  # what follows belongs to the next answer
            rest += raw[first:last]
        else:
            rest = answer.feed(raw[first:last])
    return answer, bytes(body), rest


OK = (
    b'HTTP/1.1 200 OK\r\nETag: "e"\r\nContent-Length: 11\r\n'
    b"Last-Modified: Sun, 22 Nov 2026 10:30:05 GMT\r\nx-amz-meta-mtime: 1.5\r\n\r\nhello world"
)
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
)
ERROR = (
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 60\r\n\r\n"
    b"<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"
)


@given(cuts=st.lists(st.integers(0, 400), max_size=8), tail=st.sampled_from([b"", b"HTTP/1.1"]))
def test_an_answer_reads_the_same_however_it_is_cut(cuts: list[int], tail: bytes) -> None:
    for raw, status, body in ((OK, 200, b"hello world"), (CHUNKED, 200, b"hello world")):
        answer, sunk, rest = read(raw + tail, cuts)
        assert answer.done and answer.status == status and sunk == body
        assert rest == tail  # the next answer's bytes are handed back
        assert not answer.close_after
    answer, sunk, rest = read(ERROR, cuts)
    assert answer.done and answer.status == 404 and sunk == b""  # an error never reaches a file
    assert b"<Code>NoSuchKey</Code>" in answer.error_body


def test_the_headers_of_an_answer_are_kept_as_sent() -> None:
    answer, _, _ = read(OK, [])
    assert ("ETag", '"e"') in answer.headers
    assert ("x-amz-meta-mtime", "1.5") in answer.headers


def test_an_answer_cut_short_is_an_error() -> None:
    answer, _, _ = read(OK[:-3], [])
    assert not answer.done
    with pytest.raises(ValueError, match="closed before the end"):
        answer.ended()


def test_an_answer_without_length_ends_with_the_connection() -> None:
    answer, sunk, _ = read(b"HTTP/1.0 200 OK\r\n\r\nall of it", [])
    assert sunk == b"all of it" and not answer.done and answer.close_after
    answer.ended()
    assert answer.done


@pytest.mark.parametrize(
    "raw", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 2x0 OK\r\n\r\n", b"<html>" + b"x" * 70000]
)
def test_what_is_not_http_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        Answer(lambda _: None).feed(raw)


def test_only_plain_http_endpoints_use_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert usable("http://127.0.0.1:8333")
    assert not usable("https://s3.eu-west-3.amazonaws.com")
    monkeypatch.setenv("S3SYNC_WIRE", "0")
    assert not usable("http://127.0.0.1:8333")
