"""Retry, error classification, config, exit codes, output formats and content types."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from s3sync import content_type
from s3sync.config import parse, parse_size
from s3sync.errors import ConfigError, Disposition, ExitCode, RemoteError, classify
from s3sync.model import (
    Delete,
    Outcome,
    Problem,
    Reason,
    Report,
    Severity,
    Stat,
    Upload,
    mtime_to_text,
)
from s3sync.progress import action_line, action_record, summary_line, summary_record
from s3sync.retry import RetryPolicy, call_with_retry


def test_retry_retries_retryable_errors_with_growing_jittered_waits() -> None:
    waits: list[float] = []
    calls: Iterator[BaseException | str] = iter(
        [RemoteError("slow", code="SlowDown"), ConnectionResetError(), "done"]
    )
    retried: list[BaseException] = []

    def flaky() -> str:
        result = next(calls)
        if isinstance(result, BaseException):
            raise result
        return result

    answer = call_with_retry(
        flaky,
        policy=RetryPolicy(attempts=5, base=1.0, cap=10.0),
        classify=classify,
        sleep=waits.append,
        rand=lambda: 0.5,
        on_retry=retried.append,
    )
    assert answer == "done"
    assert waits == [0.5, 1.0]  # rand * base * 2**n
    assert len(retried) == 2


def test_retry_gives_up_after_the_attempts() -> None:
    attempts = []

    def always() -> None:
        attempts.append(1)
        raise RemoteError("boom", code="InternalError", status=500)

    with pytest.raises(RemoteError):
        call_with_retry(
            always,
            policy=RetryPolicy(attempts=3),
            classify=classify,
            sleep=lambda s: None,
            rand=lambda: 1.0,
        )
    assert len(attempts) == 3


def test_retry_never_retries_fatal_or_failing_errors() -> None:
    for exc in (RemoteError("no", code="NoSuchBucket", status=404), FileNotFoundError("x")):
        attempts: list[int] = []

        def once(e: BaseException = exc, calls: list[int] = attempts) -> None:
            calls.append(1)
            raise e

        with pytest.raises(type(exc)):
            call_with_retry(
                once,
                policy=RetryPolicy(attempts=5),
                classify=classify,
                sleep=lambda s: None,
                rand=lambda: 1.0,
            )
        assert len(attempts) == 1


@pytest.mark.parametrize(("attempts", "calls_made"), [(1, 0), (2, 1), (3, 2)])
def test_a_first_attempt_made_elsewhere_counts_against_the_attempts(
    attempts: int, calls_made: int
) -> None:
    first = RemoteError("busy", code="SlowDown", status=503)
    calls: list[int] = []
    retried: list[BaseException] = []
    waits: list[float] = []

    def always() -> None:
        calls.append(1)
        raise RemoteError("still busy", code="SlowDown", status=503)

    with pytest.raises(RemoteError) as raised:
        call_with_retry(
            always,
            policy=RetryPolicy(attempts=attempts, base=1.0),
            classify=classify,
            sleep=waits.append,
            rand=lambda: 1.0,
            on_retry=retried.append,
            failed=first,
        )
    assert len(calls) == calls_made
    assert retried[:1] == ([first] if calls_made else [])
    assert len(retried) == calls_made and waits == [2.0**n for n in range(calls_made)]
    assert (raised.value is first) == (calls_made == 0)  # else the last attempt's error


def test_a_first_attempt_made_elsewhere_that_cannot_pass_is_not_retried() -> None:
    denied = RemoteError("no", code="AccessDenied", status=403)
    with pytest.raises(RemoteError) as raised:
        call_with_retry(
            lambda: "never called",
            policy=RetryPolicy(attempts=5),
            classify=classify,
            sleep=lambda s: None,
            rand=lambda: 1.0,
            failed=denied,
        )
    assert raised.value is denied


def test_retry_waits_are_capped() -> None:
    policy = RetryPolicy(attempts=50, base=0.25, cap=20.0)
    assert policy.delay(30, lambda: 1.0) == 20.0


@pytest.mark.parametrize(
    ("exc", "disposition"),
    [
        (RemoteError("", code="SlowDown", status=503), Disposition.RETRY),
        (RemoteError("", code="InternalError", status=500), Disposition.RETRY),
        (RemoteError("", code="Whatever", status=502), Disposition.RETRY),
        (RemoteError("", code="ConnectionError"), Disposition.RETRY),
        (RemoteError("", code="ReadTimeout"), Disposition.RETRY),
        (RemoteError("", code="TooManyRequests", status=429), Disposition.RETRY),
        (RemoteError("", code="NoSuchBucket", status=404), Disposition.FATAL),
        (RemoteError("", code="AccessDenied", status=403), Disposition.FATAL),
        (RemoteError("", code="SignatureDoesNotMatch", status=403), Disposition.FATAL),
        (RemoteError("", code="InvalidAccessKeyId", status=403), Disposition.FATAL),
        (RemoteError("", code="NoCredentials"), Disposition.FATAL),
        (RemoteError("", code="EntityTooLarge", status=400), Disposition.FAIL),
        (RemoteError("", code="NotImplemented", status=501), Disposition.FAIL),  # permanent
        (RemoteError("", code="Whatever", status=501), Disposition.FAIL),
        (RemoteError("", code="IncompleteListing"), Disposition.FATAL),
        (ConnectionResetError(), Disposition.RETRY),
        (TimeoutError(), Disposition.RETRY),
        (PermissionError(), Disposition.FAIL),
    ],
)
def test_classify(exc: BaseException, disposition: Disposition) -> None:
    assert classify(exc) is disposition


def test_config_top_level_then_command_table() -> None:
    text = 'workers = 4\nexclude = ["*.tmp"]\n[push]\nworkers = 8\nno-delete = true\n'
    assert parse(text, path="c.toml", command="push") == {
        "workers": 8,
        "exclude": ["*.tmp"],
        "no_delete": True,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workers = 'many'\n", "c.toml, line 1: 'workers' must be int"),
        ("\n\n[push]\nfudge = true\n", "c.toml, line 4: 'push.fudge' must be int or float"),
        ("colour = 1\n", "unknown key 'colour'"),
        ("exclude = [1]\n", "must be a list of strings"),
        ("part_size = 'huge'\n", "'huge' is not a size"),
        ("workers = \n", "not valid TOML"),
    ],
)
def test_config_errors_name_the_key_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text, path="c.toml", command="push")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (100, 100),
        ("100", 100),
        ("8MiB", 8 << 20),
        ("8M", 8 << 20),
        ("1.5k", 1536),
        ("2 GB", 2 << 30),
    ],
)
def test_parse_size(value: int | str, size: int) -> None:
    assert parse_size(value) == size


def test_mtime_text_is_exact() -> None:
    assert mtime_to_text(1_700_000_000_123_456_789) == "1700000000.123456789"
    assert mtime_to_text(1_700_000_000_000_000_000) == "1700000000"
    assert mtime_to_text(1_500_000_000) == "1.5"
    assert mtime_to_text(-1) == "-0.000000001"


UP = Upload("k", "k", Stat(10, 0), Reason.NEW)


def test_exit_code_precedence() -> None:
    assert Report().exit_code is ExitCode.OK
    assert (
        Report(withheld_deletes=3, withheld_reason="guard").exit_code is ExitCode.DELETES_WITHHELD
    )
    failed = Report()
    failed.record(Outcome(UP, "boom"))
    assert failed.exit_code is ExitCode.PARTIAL
    fatal = Report(fatal="bucket gone", failed=1)
    assert fatal.exit_code is ExitCode.FATAL
    interrupted = Report(fatal="bucket gone", failed=1, interrupted=True)
    assert interrupted.exit_code is ExitCode.INTERRUPTED
    warned = Report()
    warned.note(Problem("fifo", "skipped", Severity.WARNING))
    assert warned.exit_code is ExitCode.OK
    errored = Report()
    errored.note(Problem("dir", "unreadable", Severity.ERROR))
    assert errored.exit_code is ExitCode.PARTIAL


def test_output_records() -> None:
    report = Report(duration=1.25)
    report.record(Outcome(UP, retries=2))
    report.record(Outcome(Delete("old"), dry_run=False))
    assert action_record(Outcome(UP, retries=2)) == {
        "type": "upload",
        "key": "k",
        "reason": "new",
        "status": "ok",
        "path": "k",
        "size": 10,
        "retries": 2,
    }
    assert summary_record(report)["uploaded_bytes"] == 10
    assert summary_record(report)["retries"] == 2
    assert summary_line(report, "push") == (
        "s3sync push: 1 uploaded (10 B), 1 deleted, 0 unchanged, 0 failed, 2 retries in 1.2s"
    )
    report.throttled, report.narrowest = 12, 8
    assert summary_record(report)["throttled"] == 12
    assert summary_record(report)["narrowest_in_flight"] == 8
    assert ", 2 retries, 12 throttled (in flight down to 8) in" in summary_line(report, "push")


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("index.html", b"", "text/html; charset=utf-8"),
        ("app.MJS", b"", "text/javascript; charset=utf-8"),
        ("font.woff2", b"", "font/woff2"),
        ("pic.webp", b"", "image/webp"),
        ("logo.svg", b"", "image/svg+xml; charset=utf-8"),
        ("site.webmanifest", b"", "application/manifest+json; charset=utf-8"),
        ("README", b"plain words\n", "text/plain; charset=utf-8"),  # libmagic decides
        ("blob", b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(16), "image/gif"),
        ("empty", b"", "application/octet-stream"),
    ],
)
def test_content_type(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert content_type.guess(str(path)) == expected


def test_verbose_lines_name_each_kind_of_action() -> None:
    from s3sync.model import Copy, Download, RemoveLocal

    stat = Stat(1500, 0)
    assert action_line(Outcome(UP)) == "upload k [new] (10 B)"
    assert action_line(Outcome(Delete("old"))) == "delete old [gone]"
    assert action_line(Outcome(Download("k", "k", stat, Reason.CONTENT))) == (
        "download k [content] (1.5 kB)"
    )
    assert action_line(Outcome(Copy("d", "s", stat, Reason.SIZE), dry_run=True)) == (
        "would copy d [size] (1.5 kB)"
    )
    assert action_line(Outcome(RemoveLocal("x"))) == "remove x [gone]"


@pytest.mark.parametrize(
    ("body", "read"),
    [
        (b'{"s3sync": "lease", "host": "h", "pid": 7, "renewed": 1, "expires": 2.5}', 2.5),
        (b'{"host": "h", "pid": 7, "renewed": 1.0, "expires": 3}', 3.0),  # older: no mark
        (b'{"s3sync": "lease", "host": "h", "pid": 7, "renewed": 1}', None),  # a field short
        (b'{"s3sync": "lease", "host": "h", "pid": "7", "renewed": 1, "expires": 2}', None),
        (b'{"s3sync": "lease", "host": "h", "pid": true, "renewed": 1, "expires": 2}', None),
        (b'{"s3sync": "x", "host": "h", "pid": 7, "renewed": 1, "expires": 2}', None),
        (b'{"host": "h", "pid": 7, "renewed": 1, "expires": 2, "more": 0}', None),
        (b"<html>a page</html>", None),
        (b"\xff\xfe", None),
        (b"[]", None),
    ],
)
def test_only_a_lease_s3sync_wrote_reads_as_one(body: bytes, read: float | None) -> None:
    from s3sync.lease import read_lease

    found = read_lease(body)
    assert (None if found is None else found[0]) == read
