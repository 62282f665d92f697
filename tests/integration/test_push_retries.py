"""Retries through a fault-injecting proxy: throttled and failing requests are retried."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Tree
from tests.integration.conftest import keys, objects
from tests.integration.proxy import INTERNAL, SLOW_DOWN, fault_proxy

pytestmark = pytest.mark.integration


def test_throttled_uploads_are_retried_and_counted(
    cli: Any, server: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    files = {f"f{i}.txt": f"content {i}" for i in range(10)}
    src = tree(files)
    puts = 0

    def slow_down_first_puts(method: str, path: str, n: int) -> tuple[int, bytes] | None:
        nonlocal puts
        if method == "PUT":
            puts += 1
            if puts <= 4:
                return SLOW_DOWN
        return None

    with fault_proxy(server.endpoint, slow_down_first_puts) as proxy:
        run = cli("push", "--json", "-w", "2", src, f"s3://{bucket}", endpoint=proxy.endpoint)

    assert run.code == 0, run.err
    assert len(proxy.faulted()) == 4
    assert run.summary()["retries"] == 4
    assert objects(s3, bucket) == {k: v.encode() for k, v in files.items()}


def test_a_listing_that_keeps_failing_is_fatal_and_deletes_nothing(
    cli: Any, server: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    s3.put_object(Bucket=bucket, Key="keep.txt", Body=b"k")
    src = tree({"a.txt": "a"})

    def fail_listings(method: str, path: str, n: int) -> tuple[int, bytes] | None:
        return INTERNAL if method == "GET" and "list-type=2" in path else None

    with fault_proxy(server.endpoint, fail_listings) as proxy:
        run = cli("push", "--retries", "2", src, f"s3://{bucket}", endpoint=proxy.endpoint)

    assert run.code == 3
    assert len(proxy.faulted()) == 3  # the first attempt and two retries
    assert "InternalError" in run.err and len(run.err.strip().splitlines()) == 1
    assert keys(s3, bucket) == {"keep.txt"}


def test_failed_uploads_after_retries_exit_1_and_withhold_deletes(
    cli: Any, server: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    s3.put_object(Bucket=bucket, Key="stale.txt", Body=b"stale")
    src = tree({"good.txt": "g", "doomed.txt": "d"})

    def fail_doomed(method: str, path: str, n: int) -> tuple[int, bytes] | None:
        return INTERNAL if method == "PUT" and "doomed" in path else None

    with fault_proxy(server.endpoint, fail_doomed) as proxy:
        run = cli(
            "push", "--json", "--retries", "1", src, f"s3://{bucket}", endpoint=proxy.endpoint
        )

    assert run.code == 1
    failed = [r for r in run.json_lines() if r.get("status") == "failed"]
    assert [(r["key"], r["retries"]) for r in failed] == [("doomed.txt", 1)]
    assert keys(s3, bucket) == {"good.txt", "stale.txt"}
    assert run.summary()["withheld_deletes"] == 1
