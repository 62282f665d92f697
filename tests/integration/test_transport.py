"""The transport: every upload verified, AWS's configuration conventions honoured on
every path, temporary files never followed, no run that hangs."""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from s3sync import localtree
from s3sync.api import restore
from s3sync.cli import SIGNAL_GRACE
from s3sync.store.protocol import crc32_text
from tests.conftest import write_tree
from tests.integration.conftest import cli_env, keys, objects
from tests.integration.proxy import Flip, Pause, Relabel, Silence, fault_proxy

pytestmark = pytest.mark.integration

BIG = os.urandom(6 * 1024 * 1024 + 5)
FILES: dict[str, bytes | str] = {"a.html": "<p>a</p>" * 50, "d/b.css": "b{}" * 99, "big.bin": BIG}
PATHS = {"crt": {}, "botocore": {"S3SYNC_CRT": "0"}}


def first_put_of_each_key(method: str, path: str, _n: int, seen: set[str]) -> Flip | None:
    if method != "PUT" or path in seen:
        return None
    seen.add(path)
    return Flip()


@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_byte_flipped_on_the_wire_is_refused_by_the_server_and_sent_again(
    path: str, cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", FILES)
    seen: set[str] = set()
    with fault_proxy(server.endpoint, lambda m, p, n: first_put_of_each_key(m, p, n, seen)) as px:
        run = cli(
            "push", "--json", "--multipart-threshold", "5MiB", "--part-size", "5MiB",
            src, f"s3://{bucket}/site", "--endpoint-url", px.endpoint,
            env=cli_env(server, **PATHS[path]),
        )  # fmt: skip
    assert run.code == 0, run.err
    assert run.summary()["retries"] == len(px.faulted()) >= 3  # two files, two parts
    stored = objects(s3, bucket, "site/")
    sent = {f"site/{k}": v.encode() if isinstance(v, str) else v for k, v in FILES.items()}
    assert stored == sent
    head = s3.head_object(Bucket=bucket, Key="site/a.html", ChecksumMode="ENABLED")
    assert head["ETag"] == f'"{hashlib.md5(str(FILES["a.html"]).encode()).hexdigest()}"'
    assert head.get("ChecksumCRC32")  # stored for any tool to verify


@pytest.mark.parametrize("path", sorted(PATHS))
def test_bytes_always_flipped_fail_the_file_and_store_nothing(
    path: str, cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", {"a.html": "<p>a</p>"})
    flip = lambda m, p, n: Flip() if m == "PUT" else None  # noqa: E731
    with fault_proxy(server.endpoint, flip) as proxy:
        run = cli(
            "push", "--retries", "1", src, f"s3://{bucket}/site",
            "--endpoint-url", proxy.endpoint, env=cli_env(server, **PATHS[path]),
        )  # fmt: skip
    assert run.code == 1
    assert "BadDigest" in run.err
    assert keys(s3, bucket) == set()


def test_an_answer_whose_etag_is_not_the_md5_sent_fails_the_upload(
    cli: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", {"a.html": "<p>a</p>"})
    wrong = '"00000000000000000000000000000000"'
    relabel = lambda m, p, n: Relabel(wrong) if m == "PUT" else None  # noqa: E731
    with fault_proxy(server.endpoint, relabel) as proxy:
        run = cli(
            "push", "--retries", "1", src, f"s3://{bucket}/site",
            "--endpoint-url", proxy.endpoint,
        )  # fmt: skip
    assert run.code == 1
    assert "not the MD5" in run.err and "BadDigest" in run.err


def test_a_pipe_whose_part_is_flipped_sends_that_part_again(
    cli: Any, s3: Any, server: Any, bucket: str
) -> None:
    seen: set[str] = set()
    with fault_proxy(server.endpoint, lambda m, p, n: first_put_of_each_key(m, p, n, seen)) as px:
        run = cli(
            "pipe", "--part-size", "5MiB", f"s3://{bucket}/stream",
            "--endpoint-url", px.endpoint, stdin=BIG,
        )  # fmt: skip
    assert run.code == 0, run.err
    assert len(px.faulted()) >= 2
    assert s3.get_object(Bucket=bucket, Key="stream")["Body"].read() == BIG


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "profile"])
def test_the_endpoint_may_come_from_the_environment_or_the_profile(
    variable: str, cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", {"a.html": "a", "d/b.css": "b"})
    env = cli_env(server)
    if variable == "profile":
        config = tmp_path / "config"
        config.write_text(f"[default]\nendpoint_url = {server.endpoint}\n")
        env["AWS_CONFIG_FILE"] = str(config)
    else:
        env[variable] = server.endpoint
    for crt in ("1", "0"):
        env["S3SYNC_CRT"] = crt
        dest = tmp_path / f"dest{crt}"
        argv = [sys.executable, "-m", "s3sync"]
        pushed = subprocess.run(
            [*argv, "push", src, f"s3://{bucket}/site{crt}"], env=env, capture_output=True
        )
        assert pushed.returncode == 0, pushed.stderr.decode()
        back = subprocess.run(
            [*argv, "restore", f"s3://{bucket}/site{crt}", dest], env=env, capture_output=True
        )
        assert back.returncode == 0, back.stderr.decode()
        assert (dest / "d" / "b.css").read_text() == "b"
    assert keys(s3, bucket) == {f"site{c}/{k}" for c in "10" for k in ("a.html", "d/b.css")}


def test_a_symlink_planted_at_a_temporary_name_is_never_followed(
    cli: Any, server: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even a writer that knew every temporary name in advance (here: told them) cannot
    make a restore write through a symlink: the file is created O_EXCL|O_NOFOLLOW."""
    files = {f"f{i}.txt": f"file {i}" for i in range(20)}
    src = write_tree(tmp_path / "src", files)
    assert cli("push", src, f"s3://{bucket}/site").code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    # after the name the writability check takes, the next ones are symlinks out
    planted = [f".s3sync-p{os.getpid()}-{i:016x}.tmp" for i in range(1, 7)]
    for name in planted:
        (dest / name).symlink_to(outside / name)
    later = (f".s3sync-p{os.getpid()}-{i:016x}.tmp" for i in range(1000, 10**6))
    names = itertools.chain([f".s3sync-p{os.getpid()}-{0:016x}.tmp"], planted, later)
    monkeypatch.setattr(localtree, "_temp_name", lambda: next(names))
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    report = restore(f"s3://{bucket}/site", str(dest), endpoint_url=server.endpoint, workers=4)
    assert list(outside.iterdir()) == []
    assert report.downloaded == len(files), report.errors
    assert all((dest / name).is_symlink() for name in planted)  # passed over, not followed
    assert {name: (dest / name).read_text() for name in files} == files


def test_a_server_that_stops_answering_ends_the_run_with_its_timeout(
    cli: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    files = {f"f{i}.txt": f"file {i}" for i in range(30)}
    src = write_tree(tmp_path / "src", files)
    assert cli("push", src, f"s3://{bucket}/site").code == 0
    silent = lambda m, p, n: Silence() if m == "GET" and "list-type" not in p else None  # noqa: E731
    with fault_proxy(server.endpoint, silent) as proxy:
        started = time.monotonic()
        run = cli(
            "restore", "--timeout", "2", "--retries", "1", f"s3://{bucket}/site",
            tmp_path / "dest", "--endpoint-url", proxy.endpoint, timeout=90,
        )  # fmt: skip
        took = time.monotonic() - started
    assert run.code in (1, 3), run.err
    assert took < 60  # bounded by --timeout and --retries, not by the server


@pytest.mark.parametrize("command", ["restore", "push"])
def test_sigterm_ends_a_run_that_waits_on_a_silent_server(
    command: str, server: Any, bucket: str, s3: Any, tmp_path: Path
) -> None:
    files = {f"f{i}.txt": f"file {i}" for i in range(30)}
    src = write_tree(tmp_path / "src", files)
    if command == "restore":
        for name, body in files.items():
            s3.put_object(Bucket=bucket, Key=f"site/{name}", Body=body.encode())
        args = [f"s3://{bucket}/site", str(tmp_path / "dest")]
    else:
        args = [str(src), f"s3://{bucket}/site"]
    silent = lambda m, p, n: Silence() if "list-type" not in p else None  # noqa: E731
    with fault_proxy(server.endpoint, silent) as proxy:
        process = subprocess.Popen(
            [sys.executable, "-m", "s3sync", command, *args, "--endpoint-url", proxy.endpoint],
            env=cli_env(server),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while not proxy.faulted() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.faulted(), "the run never reached the server"
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        try:
            code = process.wait(timeout=SIGNAL_GRACE + 15)
        finally:
            process.kill()
        took = time.monotonic() - signalled
    assert code == 130, code
    assert took < SIGNAL_GRACE + 5  # not the 60 s a silent request may wait
    assert keys(s3, bucket) == ({f"site/{n}" for n in files} if command == "restore" else set())


@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_byte_flipped_in_a_download_fails_its_stored_checksum_and_is_fetched_again(
    path: str, cli: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    # big.bin: over the 8 MiB from which a restore reads through botocore
    files = {"a.html": "<p>a</p>" * 100, "d/b.css": "b{}" * 300, "big.bin": BIG.hex()}
    src = write_tree(tmp_path / "src", files)
    parts = ("--multipart-threshold", "5MiB", "--part-size", "5MiB")
    assert cli("push", *parts, src, f"s3://{bucket}/site").code == 0  # each with its CRC32
    seen: set[str] = set()

    def first_get_of_each_key(method: str, key: str, _n: int) -> Flip | None:
        if method != "GET" or "list-type" in key or key in seen:
            return None
        seen.add(key)
        return Flip(answer=True)

    with fault_proxy(server.endpoint, first_get_of_each_key) as proxy:
        run = cli(
            "restore", "--json", f"s3://{bucket}/site", tmp_path / "dest",
            "--endpoint-url", proxy.endpoint, env=cli_env(server, **PATHS[path]),
        )  # fmt: skip
    assert run.code == 0, run.err
    assert run.summary()["retries"] == len(proxy.faulted()) == 3, [
        (s.method, s.path) for s in proxy.seen
    ]
    assert {k: (tmp_path / "dest" / k).read_text() for k in files} == files


def test_max_requests_bounds_the_transfers_in_flight(
    cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    files = {f"p/{i:03}.html": f"<p>{i}</p>" * 20 for i in range(48)}
    src = write_tree(tmp_path / "src", files)

    def distant(method: str, key: str, _n: int) -> Pause | None:
        """Every object's PUT and GET answer late, as over a long link; listings do not."""
        return Pause(0.1) if method in ("PUT", "GET") and "list-type" not in key else None

    peaks: dict[tuple[str, int], int] = {}
    for cap in (3, 16):
        target = f"s3://{bucket}/cap{cap}"
        for verb, args in (("push", (src, target)), ("restore", (target, tmp_path / f"d{cap}"))):
            with fault_proxy(server.endpoint, distant) as proxy:
                run = cli(
                    verb, *args, "--max-requests", str(cap),
                    "--endpoint-url", proxy.endpoint, env=cli_env(server),
                )  # fmt: skip
            assert run.code == 0, run.err
            peaks[(verb, cap)] = proxy.peak
        assert objects(s3, bucket, f"cap{cap}/") == {
            f"cap{cap}/{k}": v.encode() for k, v in files.items()
        }
        assert {k: (tmp_path / f"d{cap}" / k).read_text() for k in files} == files
    assert peaks[("push", 3)] <= 3 < peaks[("push", 16)] <= 16, peaks
    assert peaks[("restore", 3)] <= 3 < peaks[("restore", 16)] <= 16, peaks


@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_multipart_upload_stores_the_crc32_of_the_whole_object(
    path: str, cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", {"big.bin": BIG})
    run = cli(
        "push", "--multipart-threshold", "5MiB", "--part-size", "5MiB",
        src, f"s3://{bucket}/site", env=cli_env(server, **PATHS[path]),
    )  # fmt: skip
    assert run.code == 0, run.err
    piped = cli(
        "pipe", "--part-size", "5MiB", f"s3://{bucket}/stream",
        "--endpoint-url", server.endpoint, stdin=BIG, env=cli_env(server, **PATHS[path]),
    )  # fmt: skip
    assert piped.code == 0, piped.err
    for key in ("site/big.bin", "stream"):
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ETag"].endswith('-2"')  # two parts
        assert head["ChecksumCRC32"] == crc32_text(zlib.crc32(BIG)), key  # any tool checks it
        assert head["ChecksumType"] == "FULL_OBJECT"


def test_a_server_that_refuses_full_object_checksums_gets_plain_multipart_uploads(
    cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", {"a.bin": BIG, "b.bin": BIG[::-1]})
    refusal = (400, b"<Error><Code>InvalidArgument</Code><Message>no</Message></Error>")
    creates: list[int] = []

    def refuse_the_first_create(method: str, key: str, n: int) -> Any:
        if method == "POST" and key.endswith("?uploads"):
            creates.append(n)
            return refusal if len(creates) == 1 else None
        return None

    with fault_proxy(server.endpoint, refuse_the_first_create) as proxy:
        run = cli(
            "push", "--workers", "1", "--multipart-threshold", "5MiB", "--part-size", "5MiB",
            src, f"s3://{bucket}/site", "--endpoint-url", proxy.endpoint,
        )  # fmt: skip
    assert run.code == 0, run.err
    assert len(creates) == 3  # refused, asked again without, the next file never asks
    assert objects(s3, bucket) == {"site/a.bin": BIG, "site/b.bin": BIG[::-1]}
    for key in ("site/a.bin", "site/b.bin"):
        assert "ChecksumCRC32" not in s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")


def test_a_server_at_its_capacity_narrows_the_requests_in_flight(
    cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    files = {f"p/{i:03}.html": f"<p>{i}</p>" * 20 for i in range(60)}
    src = write_tree(tmp_path / "src", files)

    def four_at_a_time(method: str, key: str, _n: int) -> Pause | None:
        """A server that takes four uploads at once and asks the rest to slow down."""
        return Pause(0.05, most=4) if method == "PUT" else None

    with fault_proxy(server.endpoint, four_at_a_time) as proxy:
        run = cli(
            "push", "--json", "--max-requests", "32", "--retries", "12",
            src, f"s3://{bucket}/site", "--endpoint-url", proxy.endpoint,
        )  # fmt: skip
    assert run.code == 0, run.err
    summary = run.summary()
    assert summary["throttled"] == proxy.throttled > 0
    assert summary["narrowest_in_flight"] <= 16  # halved from 32
    assert objects(s3, bucket, "site/") == {f"site/{k}": v.encode() for k, v in files.items()}
