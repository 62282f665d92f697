"""Wrong region, expired credentials, or something that is not S3 answering: every
command stops with exit 3 and one line that says what to fix, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tree
from tests.integration.conftest import keys
from tests.integration.proxy import Fault, fault_proxy


def error(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()


ANSWERS = {
    "region-mismatch": (
        error(
            400,
            "AuthorizationHeaderMalformed",
            "The authorization header is malformed; the region 'us-east-1' is wrong; "
            "expecting 'eu-west-1'",
        ),
        "another region: set --region",
    ),
    "expired-token": (
        error(400, "ExpiredToken", "The provided token has expired."),
        "credentials have expired",
    ),
    "html-not-s3": (
        (200, b"<!DOCTYPE html><html><body><h1>Welcome to the hotel Wi-Fi</h1></body></html>"),
        "did not answer like S3",
    ),
}


def commands(bucket: str, src: Path, tmp: Path) -> dict[str, tuple[list[str | Path], bytes]]:
    return {
        "push": (["push", src, f"s3://{bucket}"], b""),
        "restore": (["restore", f"s3://{bucket}", tmp / "dest"], b""),
        "copy": (["copy", f"s3://{bucket}/src/*", f"s3://{bucket}/copy"], b""),
        "pipe": (["pipe", f"s3://{bucket}/piped"], b"some bytes"),
        "cat": (["cat", f"s3://{bucket}/kept.txt"], b""),
    }


@pytest.mark.parametrize("answer", ANSWERS)
@pytest.mark.parametrize("command", ["push", "restore", "copy", "pipe", "cat"])
def test_every_command_stops_with_exit_3_and_one_line(
    command: str,
    answer: str,
    cli: Any,
    s3: Any,
    server: Any,
    bucket: str,
    tree: Tree,
    tmp_path: Path,
) -> None:
    s3.put_object(Bucket=bucket, Key="kept.txt", Body=b"kept")
    src = tree({"new.txt": "new"})
    reply, says = ANSWERS[answer]
    if command == "cat" and reply[0] == 400:  # cat starts with a HEAD: no body says why
        says = "refused the request as malformed: check the credentials and --region"

    def rule(_method: str, _path: str, _n: int) -> Fault:
        return reply

    args, stdin = commands(bucket, src, tmp_path)[command]
    with fault_proxy(server.endpoint, rule) as proxy:
        run = cli(*args, "--endpoint-url", proxy.endpoint, "--retries", "1", stdin=stdin)

    assert run.code == 3, run.err
    assert run.err.count("\n") == 1 and says in run.err, run.err
    assert "Traceback" not in run.err
    assert keys(s3, bucket) == {"kept.txt"}  # nothing changed, nothing deleted
    assert not (tmp_path / "dest").exists() or not any((tmp_path / "dest").iterdir())
