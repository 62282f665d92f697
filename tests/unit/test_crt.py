"""What an awscrt answer means: an ETag, or the failure s3sync classifies and retries."""

from __future__ import annotations

import pytest

from s3sync.crt import CrtFailure, answered_etag


class Refused(Exception):
    name = "AWS_ERROR_S3_INVALID_RESPONSE_STATUS"


class Timeout(Exception):
    name = "AWS_IO_SOCKET_TIMEOUT"


class Internal(Exception):
    name = "AWS_ERROR_S3_INTERNAL_ERROR"
    message = "Response code indicates internal server error"


class SlowDown(Exception):
    name = "AWS_ERROR_S3_SLOW_DOWN"


def test_a_success_gives_the_quoted_etag() -> None:
    assert answered_etag({"status_code": 200, "headers": [("ETag", '"abc"')]}) == '"abc"'
    assert answered_etag({"status_code": 200, "headers": [("etag", "abc")]}) == '"abc"'  # unquoted


@pytest.mark.parametrize(
    ("answer", "code", "status"),
    [
        ({"status_code": 200, "headers": []}, "NotS3", 200),  # a web page, not S3
        (
            {
                "status_code": 503,
                "error": Refused(),
                "error_body": b"<Error><Code>SlowDown</Code><Message>Reduce</Message></Error>",
            },
            "SlowDown",
            503,
        ),
        ({"status_code": 403, "error": Refused(), "error_body": b""}, "403", 403),
        ({"error": ConnectionResetError()}, "ConnectionError", None),
        ({"error": Timeout()}, "ReadTimeout", None),
        # a listing's 500 and 503 come back as bare errors, without status or body
        ({"error": Internal(), "status_code": None}, "InternalError", 500),
        ({"error": SlowDown(), "status_code": None}, "SlowDown", 503),
    ],
)
def test_failures_carry_the_code_and_status_botocore_would_give(
    answer: dict[str, object], code: str, status: int | None
) -> None:
    with pytest.raises(CrtFailure) as failed:
        answered_etag(answer)
    assert (failed.value.code, failed.value.status) == (code, status)
