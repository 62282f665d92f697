"""Cron safety against the real server: the index, locks, delete guards, logs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tree, write_tree
from tests.integration.conftest import Run, cli_env, keys, objects
from tests.integration.proxy import INTERNAL, Fault, Hold, fault_proxy

pytestmark = pytest.mark.integration


def files(n: int, tag: str = "v1") -> dict[str, str]:
    return {f"d{i % 10}/f{i}.txt": f"{tag} {i}" for i in range(n)}


def start(server: Any, *args: str | Path, endpoint: str | None = None) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "s3sync", *map(str, args)]
    argv += ["--endpoint-url", endpoint or server.endpoint]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(server), text=True
    )


@contextlib.contextmanager
def uploading(server: Any, *args: str | Path) -> Iterator[subprocess.Popen[str]]:
    """Start a run whose file uploads (not its lock's requests) a proxy holds; yield it
    once it is uploading, so holding its lock; then let it finish."""
    release = threading.Event()

    def rule(method: str, path: str, _n: int) -> Fault | None:
        return Hold(release) if method == "PUT" and "/f" in path else None

    with fault_proxy(server.endpoint, rule) as proxy:
        run = start(server, *args, endpoint=proxy.endpoint)
        try:
            assert proxy.stalled.wait(60), "the run never uploaded"
            yield run
        finally:
            release.set()
            run.communicate(timeout=120)


def test_no_op_push_with_an_index_sends_no_request(
    cli: Any, server: Any, s3: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(files(50))
    index = tmp_path / "site.idx"
    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        first = cli(
            "push", "--json", "--index", index, src, f"s3://{bucket}", endpoint=proxy.endpoint
        )
        endpoint = proxy.endpoint
    # the proxy is gone: its port is closed, so any request would fail
    built = index.read_bytes()

    again = cli("push", "--json", "--index", index, src, f"s3://{bucket}", endpoint=endpoint)

    assert first.code == 0 and first.summary()["remote"] == "listing"
    assert again.code == 0, again.err
    summary = again.summary()
    assert summary["remote"] == "index"
    assert (summary["uploaded"], summary["deleted"], summary["unchanged"]) == (0, 0, 50)
    # nothing changed, so nothing was written: not even the index's change counter
    assert index.read_bytes() == built
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("site.idx")) == [
        "site.idx"
    ]


def test_index_compares_exactly_and_ignore_index_cures_out_of_band_changes(
    cli: Any, s3: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(files(20))
    index = tmp_path / "site.idx"
    assert cli("push", "--index", index, src, f"s3://{bucket}").code == 0
    recent = time.time() - 3600  # older than any listing's window, but an exact index sees it
    edited = src / "d1/f1.txt"
    edited.write_bytes(bytes(255 - b for b in edited.read_bytes()))  # same size
    os.utime(edited, (recent, recent))
    s3.delete_object(Bucket=bucket, Key="d2/f2.txt")  # behind the index's back

    trusted = cli("push", "--json", "--index", index, src, f"s3://{bucket}")
    after_trusted = keys(s3, bucket)
    relisted = cli("push", "--json", "--index", index, "--ignore-index", src, f"s3://{bucket}")

    assert trusted.actions("upload") == {"d1/f1.txt": "content"}
    assert "d2/f2.txt" not in after_trusted  # the index was trusted: no listing
    assert relisted.summary()["remote"] == "listing"
    assert relisted.actions("upload") == {"d2/f2.txt": "new"}
    assert keys(s3, bucket) == {f"d{i % 10}/f{i}.txt" for i in range(20)}


def test_push_killed_then_rerun_uploads_only_what_was_left(
    server: Any, cli: Any, s3: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(files(300))
    index = tmp_path / "site.idx"
    assert cli("push", "--index", index, src, f"s3://{bucket}").code == 0
    write_tree(src, files(300, tag="version two"))  # every file changes size and mtime

    child = start(server, "push", "--json", "-w", "1", "--index", index, src, f"s3://{bucket}")
    assert child.stdout is not None
    for _ in range(20):
        assert json.loads(child.stdout.readline())["status"] == "ok"
    child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate(timeout=30)
    lines = [json.loads(line) for line in rest.splitlines() if line.startswith("{")]
    reported = {r["key"] for r in lines if r.get("status") == "ok"} | set()
    assert child.returncode == -signal.SIGKILL

    rerun = cli("push", "--json", "--index", index, src, f"s3://{bucket}")

    changed = set(files(300))
    first_run = changed - set(rerun.actions("upload"))
    assert rerun.code == 0, rerun.err
    assert len(first_run) >= 20  # the 20 we read, and whatever else finished
    assert set(rerun.actions("upload").values()) <= {"size", "mtime"}
    assert reported <= first_run
    assert objects(s3, bucket) == {k: v.encode() for k, v in files(300, "version two").items()}


def test_two_runs_on_one_lock_file(
    server: Any, cli: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(files(30))
    lock = tmp_path / "push.lock"
    with uploading(server, "push", "--lock", lock, src, f"s3://{bucket}") as first:
        second = cli("push", "--lock", lock, src, f"s3://{bucket}")

    assert second.code == 4
    assert f"locked by pid {first.pid} since " in second.err
    assert len(second.err.strip().splitlines()) == 1
    assert first.returncode == 0
    assert cli("push", "--lock", lock, src, f"s3://{bucket}").code == 0  # released


def test_two_runs_on_one_s3_lease_and_take_over_of_an_expired_one(
    server: Any, cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree(files(30))
    lease = "locks/site.lease"
    with uploading(server, "push", "--lock-s3", lease, src, f"s3://{bucket}/site") as first:
        held = json.loads(s3.get_object(Bucket=bucket, Key=lease)["Body"].read())
        second = cli("push", "--lock-s3", lease, src, f"s3://{bucket}/site")

    assert second.code == 4
    assert f"pid {first.pid}" in second.err and f"s3://{bucket}/{lease}" in second.err
    assert held["pid"] == first.pid and held["expires"] > time.time()
    assert first.returncode == 0
    assert lease not in keys(s3, bucket)  # released at the end

    stale = {"host": "gone-host", "pid": 1, "renewed": time.time() - 130}
    stale["expires"] = time.time() - 10  # as an older s3sync wrote it: no "s3sync" mark
    s3.put_object(Bucket=bucket, Key=lease, Body=json.dumps(stale).encode())
    taken = cli("push", "--lock-s3", lease, src, f"s3://{bucket}/site")
    assert taken.code == 0, taken.err
    assert lease not in keys(s3, bucket)

    live = {"s3sync": "lease", "host": "other-host", "pid": 4242, "renewed": time.time()}
    live["expires"] = time.time() + 600
    s3.put_object(Bucket=bucket, Key=lease, Body=json.dumps(live).encode())
    refused = cli("push", "--lock-s3", lease, src, f"s3://{bucket}/site")
    assert refused.code == 4 and "host other-host pid 4242" in refused.err


def test_lease_under_the_prefix_is_never_synced_or_deleted(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree({"a.txt": "a"})

    run = cli("push", "--json", "--lock-s3", "site/.lease", src, f"s3://{bucket}/site")

    assert run.code == 0, run.err
    assert run.actions("delete") == {}
    assert keys(s3, bucket) == {"site/a.txt"}


@pytest.mark.parametrize(
    "body",
    [
        b"<html>a page of the site</html>",
        b'{"host": "h", "pid": 1, "expires": 0}',  # lease-like, but not a lease of ours
        b'{"s3sync": "lease", "host": "h", "pid": 1, "renewed": 0, "expires": 0, "x": 1}',
        b'{"s3sync": "other", "host": "h", "pid": 1, "renewed": 0, "expires": 0}',
        b'["host", "pid", "renewed", "expires"]',
    ],
)
def test_lock_s3_on_an_object_that_is_not_a_lease_refuses_and_touches_nothing(
    cli: Any, s3: Any, bucket: str, tree: Tree, body: bytes
) -> None:
    src = tree({"index.html": "new home", "a.txt": "a"})
    s3.put_object(Bucket=bucket, Key="site/index.html", Body=body)

    run = cli("push", "--lock-s3", "site/index.html", src, f"s3://{bucket}/site")

    assert run.code == 2, run.err
    assert "not an s3sync lease" in run.err and len(run.err.strip().splitlines()) == 1
    assert keys(s3, bucket) == {"site/index.html"}  # nothing sent, nothing deleted
    assert s3.get_object(Bucket=bucket, Key="site/index.html")["Body"].read() == body


def guarded(run: Run) -> str:
    summary = run.summary()
    assert run.code == 5, (run.code, run.err)
    assert summary["deleted"] == 0
    return str(summary["withheld_reason"])


def test_empty_source_withholds_deletes(cli: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    empty = tmp_path / "mnt"
    empty.mkdir()

    run = cli("push", "--json", empty, f"s3://{bucket}")
    allowed = cli("push", "--allow-empty-source", empty, f"s3://{bucket}")

    assert "source directory is empty" in guarded(run)
    assert run.summary()["withheld_deletes"] == 3
    assert allowed.code == 0 and keys(s3, bucket) == set()


def test_max_delete_is_all_or_nothing_and_uploads_still_happen(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree(files(10))
    assert cli("push", src, f"s3://{bucket}").code == 0
    for i in range(3):
        (src / f"d{i}/f{i}.txt").unlink()
    write_tree(src, {"new.txt": "new"})

    count = cli("push", "--json", "--max-delete", "2", src, f"s3://{bucket}")
    percent = cli("push", "--json", "--max-delete", "20%", src, f"s3://{bucket}")
    enough = cli("push", "--json", "--max-delete", "30%", src, f"s3://{bucket}")

    assert "3 deletes exceed --max-delete 2" in guarded(count)
    assert count.actions("upload") == {"new.txt": "new"}
    assert "3 deletes exceed --max-delete 20%" in guarded(percent)
    assert enough.code == 0 and len(enough.actions("delete")) == 3
    assert "d0/f0.txt" not in keys(s3, bucket)


def test_corrupt_index_warns_lists_and_is_rebuilt(
    cli: Any, s3: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(files(10))
    index = tmp_path / "site.idx"
    assert cli("push", "--index", index, src, f"s3://{bucket}").code == 0
    s3.put_object(Bucket=bucket, Key="extra.txt", Body=b"x")
    index.write_bytes(b"this is not a database" * 100)

    run = cli("push", "--json", "--index", index, src, f"s3://{bucket}")
    after = cli("push", "--json", "--index", index, src, f"s3://{bucket}")

    assert run.code == 0, run.err
    warnings = [r for r in run.json_lines() if r["type"] == "warning"]
    assert "unreadable" in warnings[0]["message"] and "listing" in warnings[0]["message"]
    assert run.summary()["remote"] == "listing"
    assert run.actions("delete") == {"extra.txt": "gone"} and run.actions("upload") == {}
    assert after.summary()["remote"] == "index" and after.summary()["unchanged"] == 10


def test_index_of_another_destination_is_refused(
    cli: Any, s3: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(files(3))
    index = tmp_path / "site.idx"
    assert cli("push", "--index", index, src, f"s3://{bucket}/one").code == 0

    run = cli("push", "--index", index, src, f"s3://{bucket}/two")

    assert run.code == 2
    assert f"belongs to s3://{bucket}/one/" in run.err and "Traceback" not in run.err
    assert keys(s3, bucket, "two/") == set()


def test_failed_deletes_are_remembered_and_retried(
    cli: Any, server: Any, s3: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(files(5))
    index = tmp_path / "site.idx"
    failing = {"on": False}

    def deletes_fail(method: str, path: str, n: int) -> tuple[int, bytes] | None:
        return INTERNAL if failing["on"] and method == "POST" and "delete" in path else None

    with fault_proxy(server.endpoint, deletes_fail) as proxy:
        assert (
            cli("push", "--index", index, src, f"s3://{bucket}", endpoint=proxy.endpoint).code == 0
        )
        (src / "d0/f0.txt").unlink()
        failing["on"] = True
        failed = cli(
            "push",
            "--json",
            "--retries",
            "0",
            "--index",
            index,
            src,
            f"s3://{bucket}",
            endpoint=proxy.endpoint,
        )
        failing["on"] = False
        retried = cli(
            "push", "--json", "--index", index, src, f"s3://{bucket}", endpoint=proxy.endpoint
        )

    assert failed.code == 1
    assert retried.code == 0 and retried.summary()["remote"] == "index"
    assert retried.actions("delete") == {"d0/f0.txt": "gone"}
    assert "d0/f0.txt" not in keys(s3, bucket)


def test_source_on_another_device_withholds_deletes(
    cli: Any, s3: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(files(5))
    index = tmp_path / "site.idx"
    assert cli("push", "--index", index, src, f"s3://{bucket}").code == 0
    with sqlite3.connect(index) as db:  # as if the index was written with another disk
        db.execute("UPDATE meta SET value = '12345' WHERE name = 'device'")
    (src / "d0/f0.txt").unlink()

    run = cli("push", "--json", "--index", index, src, f"s3://{bucket}")

    assert "another device" in guarded(run)
    assert "d0/f0.txt" in keys(s3, bucket)


def test_log_file_gets_timestamped_actions_errors_and_summary(
    cli: Any, s3: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree({"a.txt": "a"})
    os.symlink("nowhere", src / "broken")
    s3.put_object(Bucket=bucket, Key="old.txt", Body=b"o")
    log = tmp_path / "s3sync.log"

    run = cli("push", "-q", "--log-file", log, src, f"s3://{bucket}")
    cli("push", "-q", "--log-file", log, src, "s3://no-such-bucket-for-log")

    assert run.code == 0 and run.out == ""
    lines = log.read_text().splitlines()
    assert all(line[:4].isdigit() and line[10] == "T" for line in lines)
    text = "\n".join(lines)
    assert "ok upload a.txt [new]" in text
    assert "ok delete old.txt [gone]" in text
    assert "warning: broken: broken symlink" in text
    assert "s3sync push: 1 uploaded" in text and "[exit 0]" in text
    assert "error: s3sync push: bucket 'no-such-bucket-for-log' does not exist" in text
    assert "[exit 3]" in text
