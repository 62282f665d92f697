"""Nonsense option values: a usage error (exit 2, one line), before anything is sent.

The endpoint is a loopback port nothing listens on: a run that got as far as sending
would end with exit 3 ("cannot connect"), not 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from s3sync.errors import ConfigError
from s3sync.headers import Headers, metadata_pair, parse_header, rule_from_table
from s3sync.paths import parse_s3_url

DEAD = "http://127.0.0.1:9"


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return subprocess.run(
        [sys.executable, "-m", "s3sync", *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("push", "--timeout", "nan"),
        ("push", "--timeout", "inf"),
        ("push", "--fudge", "nan"),
        ("push", "--fudge", "inf"),
        ("push", "--fudge", "1e308"),
        ("push", "--part-size", "1"),
        ("push", "--part-size", "0"),
        ("push", "--part-size", "6GiB"),
        ("push", "--multipart-threshold", "0"),
        ("push", "--header", "Cache-Control: max-age=60\r\nX-Evil: 1"),
        ("push", "--header", "x-amz-meta-note: a\nb"),
        ("push", "--content-type", "text/html\r\n"),
        ("push", "--lock-s3", ""),
        ("push", "--lock-s3", "locks/"),
    ],
)
def test_push_with_a_nonsense_value_is_a_usage_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    command, *options = args
    done = run(command, *options, "--endpoint-url", DEAD, str(tmp_path), "s3://bucket/site")
    assert done.returncode == 2, done.stderr
    assert "cannot connect" not in done.stderr and "refused" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("cat", "--part-size", "0", "s3://bucket/key"),
        ("pipe", "--metadata", "ü=b", "s3://bucket/key"),
        ("pipe", "--metadata", "note=a\nb", "s3://bucket/key"),
        ("pipe", "--content-type", "a\rb", "s3://bucket/key"),
        ("cat", "s3://Bucket/key"),
        ("restore", "s3://My_Bucket", "."),
    ],
)
def test_streams_and_restore_with_a_nonsense_value_are_usage_errors(args: tuple[str, ...]) -> None:
    done = run(*args, "--endpoint-url", DEAD, stdin=b"13 bytes here")
    assert done.returncode == 2, done.stderr
    assert "cannot connect" not in done.stderr and "refused" not in done.stderr


def test_an_uppercase_bucket_name_is_invalid_not_missing() -> None:
    with pytest.raises(ConfigError, match="not a valid bucket name"):
        parse_s3_url("s3://MyBucket/site")
    assert parse_s3_url("s3://my.bucket-1_old/site").bucket == "my.bucket-1_old"


@pytest.mark.parametrize(
    "make",
    [
        lambda: parse_header("Cache-Control: a\rb"),
        lambda: parse_header("x-amz-meta-ü: b"),
        lambda: parse_header("Expires: in a week"),
        lambda: parse_header("Content-Disposition: name=\u2603"),  # outside Latin-1
        lambda: metadata_pair("note=line\nbreak"),
        lambda: rule_from_table({"match": "*.html", "expires": "someday"}, "rule 1"),
        lambda: rule_from_table({"match": "*", "cache-control": "a\nb"}, "rule 1"),
        lambda: rule_from_table({"match": "*", "metadata": {"k": "v\r"}}, "rule 1"),
        lambda: Headers(content_type="text/html\n"),
    ],
)
def test_header_values_http_cannot_carry_are_config_errors(make: object) -> None:
    with pytest.raises(ConfigError):
        make()  # type: ignore[operator]


def test_good_header_values_pass() -> None:
    assert parse_header("Expires: Thu, 01 Dec 2033 16:00:00 GMT")[2].endswith("GMT")
    assert parse_header("Cache-Control: max-age=60,\tpublic")[2] == "max-age=60,\tpublic"
    assert metadata_pair("Note=café") == ("note", "café")
    assert rule_from_table({"match": "*", "expires": "2033-12-01T16:00:00Z"}, "r").fields
