"""pipe and cat against a real SeaweedFS: round trips, bounded memory, cut streams."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from tests.integration.conftest import cli_env, keys

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
SMALL_PARTS = ("--part-size", "5MiB", "-w", "2")


def measured(server: Any, args: list[str], stdin: bytes = b"") -> tuple[int, bytes, str, int]:
    """Like run_measured, reaping the child with wait4 to read its own peak RSS."""
    argv = [sys.executable, "-m", "s3sync", *args, "--endpoint-url", server.endpoint]
    read_out, write_out = os.pipe()
    read_err, write_err = os.pipe()
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=write_out, stderr=write_err, env=cli_env(server)
    ) as child:
        os.close(write_out)
        os.close(write_err)
        assert child.stdin is not None
        chunks: list[bytes] = []

        def drain() -> None:
            while data := os.read(read_out, 1 << 20):
                chunks.append(data)

        reader = threading.Thread(target=drain)
        reader.start()
        child.stdin.write(stdin)
        child.stdin.close()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        reader.join()
        err = b""
        while data := os.read(read_err, 1 << 20):
            err += data
        os.close(read_out)
        os.close(read_err)
    return child.returncode, b"".join(chunks), err.decode(), usage.ru_maxrss


def test_pipe_and_cat_round_trip_50_mb_with_bounded_memory(
    server: Any, s3: Any, bucket: str
) -> None:
    data = os.urandom(50 * MIB + 123)

    code, _, err, pipe_peak = measured(server, ["pipe", *SMALL_PARTS, f"s3://{bucket}/big"], data)
    code_small, _, _, pipe_base = measured(
        server, ["pipe", *SMALL_PARTS, f"s3://{bucket}/tiny"], b"x"
    )
    cat_code, out, cat_err, cat_peak = measured(server, ["cat", *SMALL_PARTS, f"s3://{bucket}/big"])
    _, _, _, cat_base = measured(server, ["cat", *SMALL_PARTS, f"s3://{bucket}/tiny"])

    assert code == 0 and code_small == 0, err
    assert cat_code == 0, cat_err
    assert out == data
    assert s3.head_object(Bucket=bucket, Key="big")["ETag"].strip('"').endswith("-11")
    # the same process with a one-byte stream is the baseline: Python, boto3, threads
    assert (pipe_peak - pipe_base) * 1024 < 30 * MIB, (pipe_peak, pipe_base)
    assert (cat_peak - cat_base) * 1024 < 30 * MIB, (cat_peak, cat_base)


def test_empty_stream_round_trips(server: Any, s3: Any, bucket: str) -> None:
    code, _, err, _ = measured(server, ["pipe", f"s3://{bucket}/empty"], b"")
    cat_code, out, _, _ = measured(server, ["cat", f"s3://{bucket}/empty"])

    assert code == 0, err
    assert cat_code == 0 and out == b""
    assert s3.head_object(Bucket=bucket, Key="empty")["ContentLength"] == 0


def start_pipe(server: Any, key: str) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "s3sync",
        "pipe",
        *SMALL_PARTS,
        key,
        "--endpoint-url",
        server.endpoint,
    ]
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(server),
    )


def uploads(s3: Any, bucket: str) -> list[Any]:
    return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def wait_for_upload(s3: Any, bucket: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # it starts once a whole part has been read
        if uploads(s3, bucket):
            return
        time.sleep(0.05)
    raise AssertionError("the multipart upload never started")


def test_interrupted_stream_stores_nothing_and_leaves_no_parts(
    server: Any, s3: Any, bucket: str
) -> None:
    child = start_pipe(server, f"s3://{bucket}/cut.tgz")
    assert child.stdin is not None
    child.stdin.write(os.urandom(12 * MIB))  # two parts' worth: the upload is under way
    child.stdin.flush()
    wait_for_upload(s3, bucket)
    child.send_signal(signal.SIGTERM)  # as Ctrl-C on `producer | s3sync pipe` would
    _, err = child.communicate(timeout=60)  # and the producer's end closes

    assert child.returncode == 130, err
    assert keys(s3, bucket) == set()
    assert uploads(s3, bucket) == []


def test_a_pipe_killed_outright_is_cleaned_up_by_the_next_one(
    server: Any, s3: Any, bucket: str
) -> None:
    child = start_pipe(server, f"s3://{bucket}/k.bin")
    assert child.stdin is not None
    child.stdin.write(os.urandom(12 * MIB))
    child.stdin.flush()
    wait_for_upload(s3, bucket)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=60)
    assert keys(s3, bucket) == set() and len(uploads(s3, bucket)) == 1

    code, _, err, _ = measured(server, ["pipe", f"s3://{bucket}/k.bin"], b"complete")

    assert code == 0, err
    assert uploads(s3, bucket) == []
    assert s3.get_object(Bucket=bucket, Key="k.bin")["Body"].read() == b"complete"


def test_cat_of_a_missing_object_is_fatal(server: Any, bucket: str) -> None:
    code, out, err, _ = measured(server, ["cat", f"s3://{bucket}/nothing-here"])

    assert code == 3 and out == b""
    assert "no object 'nothing-here'" in err and len(err.strip().splitlines()) == 1


def test_tar_through_pipe_and_cat_round_trips_a_tree(
    server: Any, bucket: str, tree: Any, tmp_path: Any
) -> None:
    src = tree({"a.txt": "a", "deep/b.bin": os.urandom(3 * MIB), "c/ü.txt": "unicode"})
    dest = tmp_path / "unpacked"
    dest.mkdir()
    s3sync = f"{sys.executable} -m s3sync"
    endpoint = f"--endpoint-url {server.endpoint}"
    env = cli_env(server)

    up = subprocess.run(
        f"set -o pipefail; tar czf - -C {src} . | {s3sync} pipe s3://{bucket}/backup.tgz "
        f"{endpoint}",
        shell=True,
        executable="/bin/bash",
        env=env,
        capture_output=True,
        timeout=120,
    )
    down = subprocess.run(
        f"set -o pipefail; {s3sync} cat s3://{bucket}/backup.tgz {endpoint} | tar xzf - -C {dest}",
        shell=True,
        executable="/bin/bash",
        env=env,
        capture_output=True,
        timeout=120,
    )

    assert up.returncode == 0, up.stderr
    assert down.returncode == 0, down.stderr
    for rel in ("a.txt", "deep/b.bin", "c/ü.txt"):
        assert (dest / rel).read_bytes() == (src / rel).read_bytes()


def test_cat_interrupted_exits_130(server: Any, s3: Any, bucket: str) -> None:
    from tests.integration.proxy import Stall, fault_proxy

    s3.put_object(Bucket=bucket, Key="big", Body=os.urandom(12 * MIB))

    def stall_second_range(method: str, path: str, n: int) -> Stall | None:
        return Stall(after=1024) if method == "GET" and n >= 2 else None  # HEAD, 1st GET pass

    with fault_proxy(server.endpoint, stall_second_range) as proxy:
        argv = [
            sys.executable,
            "-m",
            "s3sync",
            "cat",
            "--part-size",
            "5MiB",
            "-w",
            "1",
            f"s3://{bucket}/big",
            "--endpoint-url",
            proxy.endpoint,
        ]
        child = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env(server)
        )
        assert proxy.stalled.wait(timeout=60)
        child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)  # the proxy is gone: the stalled read ends

    assert child.returncode == 130, err
    assert b"interrupted" in err
