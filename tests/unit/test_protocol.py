"""Requests botocore builds for awscrt, the answers botocore reads, and the integrity
checks every upload carries (no server: what is built and read is the point)."""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from s3sync.store import crt
from s3sync.store.crt import Answer, CrtFailure
from s3sync.store.protocol import BotocoreProtocol, DigestMismatch
from s3sync.store.remote import client_config

BODY = b"<html>hello</html>"
MD5 = hashlib.md5(BODY).hexdigest()


def protocol(endpoint: str | None = "http://127.0.0.1:9") -> BotocoreProtocol:
    session = boto3.session.Session(
        aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1"
    )
    return BotocoreProtocol(
        session,
        endpoint_url=endpoint,
        region="us-east-1",
        config=client_config(endpoint, 1, 10.0),
    )


def headers_of(built: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in built.headers}


def test_a_put_is_addressed_by_botocore_and_carries_md5_and_crc32() -> None:
    built, md5 = protocol().request(
        "put_object",
        Bucket="bkt",
        Key="a dir/é+?.html",
        Body=BODY,
        ContentType="text/html",
        Metadata={"mtime": "12"},
    )
    assert built.method == "PUT"
    assert built.url == "http://127.0.0.1:9/bkt/a%20dir/%C3%A9%2B%3F.html"
    named = headers_of(built)
    assert named["content-type"] == "text/html"
    assert named["x-amz-meta-mtime"] == "12"
    assert base64.b64decode(named["content-md5"]).hex() == MD5 == md5
    assert (
        named["x-amz-checksum-crc32"]
        == base64.b64encode(zlib.crc32(BODY).to_bytes(4, "big")).decode()
    )
    assert built.body == BODY
    assert "authorization" not in named  # the runtime signs


def test_the_endpoint_comes_from_aws_endpoint_url_s3_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:7")
    made = protocol(None)
    assert made.endpoint_url == "http://127.0.0.1:7"
    built, md5 = made.request("get_object", Bucket="bkt", Key="k")
    assert built.url.startswith("http://127.0.0.1:7/bkt/k") and md5 is None


def test_a_listing_request_asks_for_url_encoded_keys() -> None:
    built, _ = protocol().request(
        "list_objects_v2", Bucket="bkt", Prefix="p/", ContinuationToken="t=", EncodingType="url"
    )
    assert built.url.startswith("http://127.0.0.1:9/bkt?")
    assert "list-type=2" in built.url and "continuation-token=t%3D" in built.url


def answer(status: int, headers: list[tuple[str, str]], body: bytes = b"") -> Answer:
    return Answer(status, headers, body, None)


def test_a_put_answer_gives_the_etag_and_a_wrong_one_is_refused() -> None:
    made = protocol()
    parsed = made.answer("PutObject", answer(200, [("ETag", f'"{MD5}"')]), key="k", md5=MD5)
    assert parsed["ETag"] == f'"{MD5}"'
    with pytest.raises(DigestMismatch) as wrong:
        made.answer("PutObject", answer(200, [("ETag", f'"{"0" * 32}"')]), key="k", md5=MD5)
    assert wrong.value.key == "k" and wrong.value.etag == f'"{"0" * 32}"'
    kms = [("ETag", f'"{"0" * 32}"'), ("x-amz-server-side-encryption", "aws:kms")]
    assert made.answer("PutObject", answer(200, kms), key="k", md5=MD5)  # no MD5 there


def test_a_success_without_what_s3_always_sends_is_not_s3() -> None:
    with pytest.raises(ResponseParserError):
        protocol().answer("PutObject", answer(200, [("Content-Type", "text/html")]), md5=MD5)


def test_an_error_answer_is_botocores_client_error_with_the_code() -> None:
    body = b"<Error><Code>SlowDown</Code><Message>Reduce</Message></Error>"
    with pytest.raises(ClientError) as failed:
        protocol().answer("GetObject", answer(503, [], body))
    assert failed.value.response["Error"]["Code"] == "SlowDown"
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_a_get_answer_is_read_by_botocore() -> None:
    parsed = protocol().answer(
        "GetObject",
        answer(
            200,
            [
                ("Last-Modified", "Sun, 22 Nov 2026 03:11:49 GMT"),
                ("ETag", '"abc"'),
                ("Content-Length", "5"),
                ("x-amz-meta-mtime", "7"),
            ],
            b"hello",
        ),
    )
    assert int(parsed["LastModified"].timestamp()) == 1795317109
    assert parsed["Metadata"] == {"mtime": "7"} and parsed["ContentLength"] == 5


class Named(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE", "TLSError"),
        ("AWS_IO_DNS_QUERY_FAILED", "DNSFailure"),
        ("AWS_IO_SOCKET_CONNECTION_REFUSED", "ConnectionRefused"),
        ("AWS_IO_SOCKET_TIMEOUT", "ReadTimeout"),
        ("AWS_ERROR_HTTP_CONNECTION_CLOSED", "ConnectionError"),
    ],
)
def test_a_request_without_answer_names_why(name: str, code: str) -> None:
    told = crt._no_answer(Named(name), expired=False, timeout=5)
    assert told.status is None and isinstance(told.failure, CrtFailure)
    assert told.failure.code == code
    late = crt._no_answer(Named(name), expired=True, timeout=5)
    assert late.failure is not None and late.failure.code == "ReadTimeout"


def test_a_bare_error_status_of_the_runtime_is_read_as_that_status() -> None:
    told = crt._no_answer(Named("AWS_ERROR_S3_SLOW_DOWN"), expired=False, timeout=5)
    with pytest.raises(ClientError) as failed:
        protocol().answer("ListObjectsV2", told)
    assert failed.value.response["Error"]["Code"] == "SlowDown"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "ConnectionRefused"),
        (OSError("[Errno -2] Name or service not known"), "DNSFailure"),
        (TimeoutError("timed out"), "ConnectionError"),
    ],
)
def test_botocore_failures_to_connect_are_named(error: Exception, code: str) -> None:
    from botocore.exceptions import EndpointConnectionError

    from s3sync.store.remote import _connection_code

    assert _connection_code(EndpointConnectionError(endpoint_url="http://x", error=error)) == code


_PIPELINE_ONLY = {"user-agent", "amz-sdk-invocation-id", "amz-sdk-request", "expect"}


def comparable(built: Any) -> tuple[str, str, dict[str, str], bytes | None]:
    headers = {k.lower(): v for k, v in built.headers if k.lower() not in _PIPELINE_ONLY}
    return built.method, built.url, headers, built.body


KEYS = ["a", "d/é f+?.html", "x%2Fy", "~tilde/ sp", "a//b", "../up", "q?x=1&y=2", "日本/語"]


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9", None])
def test_later_requests_are_the_ones_the_whole_pipeline_builds(
    endpoint: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first request of an operation and bucket, the serializer alone builds
    them: byte for byte what the whole pipeline would, for any key and parameters."""
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    quick, full = protocol(endpoint), protocol(endpoint)
    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_object", {"Bucket": "bkt", "Key": "first"}),
        ("put_object", {"Bucket": "bkt", "Key": "first", "Body": b""}),
        ("list_objects_v2", {"Bucket": "bkt", "Prefix": "", "EncodingType": "url"}),
    ]
    for key in KEYS:
        calls.append(("get_object", {"Bucket": "bkt", "Key": key}))
        calls.append(
            (
                "put_object",
                {
                    "Bucket": "bkt",
                    "Key": key,
                    "Body": key.encode() * 3,
                    "ContentType": "text/html; charset=utf-8",
                    "CacheControl": "max-age=60",
                    "Metadata": {"mtime": "1700000000.5", "partsize": "8"},
                },
            )
        )
        calls.append(
            (
                "list_objects_v2",
                {"Bucket": "bkt", "Prefix": key, "ContinuationToken": key, "EncodingType": "url"},
            )
        )
    for method, params in calls:
        made, md5 = quick.request(method, **dict(params))
        full._learned.clear()  # always the whole pipeline
        expected, expected_md5 = full.request(method, **dict(params))
        assert comparable(made) == comparable(expected), (method, params)
        assert md5 == expected_md5
    assert ("get_object", "bkt") in quick._learned  # the quick path was taken


def test_the_answer_read_in_part_agrees_with_the_whole_output_shape() -> None:
    from botocore.awsrequest import HeadersDict
    from botocore.parsers import create_parser

    made = protocol()
    headers = [
        ("Last-Modified", "Sun, 22 Nov 2026 03:11:49 GMT"),
        ("ETag", '"abc"'),
        ("Content-Length", "5"),
        ("Content-Type", "text/html"),
        ("Cache-Control", "max-age=9"),
        ("Content-Encoding", "gzip"),
        ("Expires", "Sun, 22 Nov 2026 03:11:49 GMT"),
        ("x-amz-website-redirect-location", "/b"),
        ("x-amz-server-side-encryption", "AES256"),
        ("x-amz-meta-mtime", "7"),
        ("x-amz-meta-partsize", "8"),
    ]
    part = made.answer("GetObject", answer(200, headers, b"hello"))
    whole = create_parser("rest-xml").parse(
        {"status_code": 200, "headers": HeadersDict(headers), "body": b"hello"},
        made._model.operation_model("GetObject").output_shape,  # type: ignore[arg-type]
    )
    for name in part:
        if name != "ResponseMetadata":
            assert part[name] == whole[name], name
    assert set(part) >= {"LastModified", "ETag", "Metadata", "ContentLength", "Expires"}
