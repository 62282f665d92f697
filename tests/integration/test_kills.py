"""Runs killed outright at chosen points, and SIGTERM: the rerun converges, nothing that
should exist is deleted, and no multipart upload is left dangling.

The proxy holds one chosen request (a listing page, an upload, a part, a delete batch)
so the kill lands exactly there, with no timing guesses.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_tree
from tests.integration.conftest import cli_env, keys, objects
from tests.integration.proxy import Fault, Hold, fault_proxy

MIB = 1024 * 1024
PARTS = ("--multipart-threshold", "5MiB", "--part-size", "5MiB")
TREE: dict[str, bytes | str] = {
    **{f"d{i % 4}/f{i}.txt": f"file {i}" for i in range(40)},
    "big.bin": b"B" * (11 * MIB),
}
Point = Callable[[str, str], bool]  # (method, path) -> hold this request
POINTS: dict[str, Point] = {
    "listing": lambda m, p: m == "GET" and "list-type=2" in p,
    "upload": lambda m, p: m == "PUT" and "uploadId=" not in p and p.endswith(".txt"),
    "multipart": lambda m, p: m == "PUT" and bool(re.search(r"[?&]partNumber=2(&|$)", p)),
    "deletes": lambda m, p: m == "POST" and p.endswith("?delete"),
}


def start(server: Any, endpoint: str, *args: str | Path) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "s3sync", *map(str, args), "--endpoint-url", endpoint]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(server), text=True
    )


def hold_first(point: Point, release: threading.Event) -> Callable[[str, str, int], Fault | None]:
    taken: list[str] = []

    def rule(method: str, path: str, _n: int) -> Fault | None:
        if not taken and point(method, path):
            taken.append(path)
            return Hold(release)
        return None

    return rule


def expected() -> dict[str, bytes]:
    return {k: v.encode() if isinstance(v, str) else v for k, v in TREE.items()}


def no_uploads_left(s3: Any, bucket: str) -> bool:
    return not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


@pytest.mark.parametrize("point", POINTS)
def test_push_killed_at_each_point_converges_on_rerun(
    point: str, cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", TREE)
    if point == "deletes":  # everything is up; only deletes are left to do
        assert cli("push", *PARTS, src, f"s3://{bucket}").code == 0
    s3.put_object(Bucket=bucket, Key="d0/f0.txt", Body=b"an old version")
    s3.put_object(Bucket=bucket, Key="stale.txt", Body=b"gone locally")
    release = threading.Event()
    with fault_proxy(server.endpoint, hold_first(POINTS[point], release)) as proxy:
        child = start(server, proxy.endpoint, "push", *PARTS, src, f"s3://{bucket}")
        assert proxy.stalled.wait(60), child.communicate(timeout=5)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        release.set()
    assert child.returncode == -signal.SIGKILL
    assert {"d0/f0.txt"} <= keys(s3, bucket)  # a file that exists locally is never deleted

    rerun = cli("push", *PARTS, "--json", src, f"s3://{bucket}")
    assert rerun.code == 0, rerun.err
    assert objects(s3, bucket) == expected()
    assert no_uploads_left(s3, bucket)


COPY_POINTS: dict[str, Point] = {
    "listing": POINTS["listing"],
    "copy": lambda m, p: m == "PUT" and "uploadId=" not in p and "/to/" in p,
    "part-copy": lambda m, p: m == "PUT" and "uploadId=" in p and "/to/" in p,
    "deletes": POINTS["deletes"],
}


@pytest.mark.parametrize("point", COPY_POINTS)
def test_copy_killed_at_each_point_converges_on_rerun(
    point: str, cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", TREE)
    assert cli("push", *PARTS, src, f"s3://{bucket}/from").code == 0
    if point == "deletes":
        assert cli("push", *PARTS, src, f"s3://{bucket}/to").code == 0
    s3.put_object(Bucket=bucket, Key="to/stale.txt", Body=b"gone at the source")
    argv = ("copy", *PARTS, "--delete", f"s3://{bucket}/from/*", f"s3://{bucket}/to")
    release = threading.Event()
    with fault_proxy(server.endpoint, hold_first(COPY_POINTS[point], release)) as proxy:
        child = start(server, proxy.endpoint, *argv)
        assert proxy.stalled.wait(60), child.communicate(timeout=5)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        release.set()

    rerun = cli(*argv, "--endpoint-url", server.endpoint)
    assert rerun.code == 0, rerun.err
    assert {k.removeprefix("to/"): v for k, v in objects(s3, bucket, "to/").items()} == expected()
    assert no_uploads_left(s3, bucket)


RESTORE_POINTS: dict[str, Point] = {
    "listing": POINTS["listing"],
    "download": lambda m, p: m == "GET" and p.endswith("/big.bin"),
}


@pytest.mark.parametrize("where", RESTORE_POINTS)
def test_restore_killed_leaves_no_partial_file_and_converges(
    where: str, cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", TREE)
    assert cli("push", *PARTS, src, f"s3://{bucket}").code == 0
    dest = tmp_path / "dest"
    release = threading.Event()
    point = hold_first(RESTORE_POINTS[where], release)
    with fault_proxy(server.endpoint, point) as proxy:
        child = start(server, proxy.endpoint, "restore", "-w", "2", f"s3://{bucket}", dest)
        assert proxy.stalled.wait(60), child.communicate(timeout=5)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        release.set()
    assert not (dest / "big.bin").exists()  # never a partial file under the real name

    rerun = cli("restore", f"s3://{bucket}", dest, "--endpoint-url", server.endpoint)
    assert rerun.code == 0, rerun.err
    found = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert found == expected()  # and no temp file left over


def test_sigterm_finishes_in_flight_uploads_keeps_the_index_skips_deletes_exits_130(
    cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", {f"f{i}.txt": f"file {i}" for i in range(30)})
    s3.put_object(Bucket=bucket, Key="stale.txt", Body=b"must survive")
    index = tmp_path / "site.idx"
    release = threading.Event()

    def hold_uploads(method: str, path: str, _n: int) -> Fault | None:
        return Hold(release) if POINTS["upload"](method, path) else None

    with fault_proxy(server.endpoint, hold_uploads) as proxy:
        child = start(
            server,
            proxy.endpoint,
            "push",
            "--json",
            "-w",
            "1",
            "--max-requests",
            "4",
            "--index",
            index,
            src,
            f"s3://{bucket}",
        )
        assert proxy.stalled.wait(60)
        child.send_signal(signal.SIGTERM)
        release.set()  # the uploads in flight when the signal came are let through
        out, err = child.communicate(timeout=60)
        sent = {s.path.rsplit("/", 1)[-1] for s in proxy.seen if POINTS["upload"](s.method, s.path)}
    records = [json.loads(line) for line in out.splitlines()]
    assert child.returncode == 130, err
    assert records[-1]["interrupted"] is True and records[-1]["deleted"] == 0
    done = {r["key"] for r in records if r["type"] == "upload" and r["status"] == "ok"}
    # every upload sent finished and was reported; with all of them held, no more than
    # the four --max-requests allows can have been in flight, none started after the signal
    assert done == sent and 1 <= len(done) <= 4
    assert keys(s3, bucket) == done | {"stale.txt"}

    rerun = cli("push", "--json", "--index", index, src, f"s3://{bucket}")
    assert rerun.code == 0
    assert set(rerun.actions("upload")) == {f"f{i}.txt" for i in range(30)} - done
    assert keys(s3, bucket) == {f"f{i}.txt" for i in range(30)}
