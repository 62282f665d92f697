"""How small files go up: through awscrt, started by the reporting thread with no worker
waiting on them, into the same objects botocore's uploads on the workers make."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_tree
from tests.integration.conftest import Run, cli_env, objects
from tests.integration.proxy import Fault, Hold, fault_proxy

pytestmark = pytest.mark.integration


def test_one_worker_has_several_small_uploads_in_flight(
    cli: Any, server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    files = {f"f{i}.txt": f"file {i}" for i in range(4)}
    src = write_tree(tmp_path / "src", files)
    release = threading.Event()
    held = threading.Semaphore(0)

    def hold_puts(method: str, _path: str, _n: int) -> Fault | None:
        if method == "PUT":
            held.release()
            return Hold(release)
        return None

    result: list[Run] = []
    with fault_proxy(server.endpoint, hold_puts) as proxy:
        runner = threading.Thread(
            target=lambda: result.append(
                cli("push", "-w", "1", src, f"s3://{bucket}", endpoint=proxy.endpoint)
            )
        )
        runner.start()
        in_flight = 0
        try:  # a worker waiting on its upload would send one at a time
            while in_flight < len(files) and held.acquire(timeout=30):
                in_flight += 1
        finally:
            release.set()
            runner.join(60)
    assert in_flight == len(files)
    (run,) = result
    assert run.code == 0, run.err
    assert objects(s3, bucket) == {k: v.encode() for k, v in files.items()}


def test_files_sent_off_the_workers_are_stored_as_the_workers_store_them(
    cli: Any, server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """awscrt's uploads, started by the reporting thread, give each object the same
    bytes, headers and metadata as botocore's uploads on the workers."""
    files = {"a.html": "<p>a</p>", "b/c.css": "c{}", "empty.txt": "", "d/noext": "plain"}
    src = write_tree(tmp_path / "src", files)
    os.utime(src / "a.html", ns=(10**18, 1_500_000_000_123_456_789))
    header = ("--header", "Cache-Control: max-age=60")
    for flag, prefix in (("1", "crt"), ("0", "boto")):
        env = cli_env(server, S3SYNC_CRT=flag)
        run = cli("push", *header, src, f"s3://{bucket}/{prefix}", env=env)
        assert run.code == 0, run.err

    def stored(prefix: str) -> dict[str, tuple[Any, ...]]:
        found = {}
        for name in files:
            head = s3.head_object(Bucket=bucket, Key=f"{prefix}/{name}")
            body = s3.get_object(Bucket=bucket, Key=f"{prefix}/{name}")["Body"].read()
            found[name] = (
                body,
                head["ETag"],
                head["ContentType"],
                head.get("CacheControl"),
                head["Metadata"],
            )
        return found

    crt, boto = stored("crt"), stored("boto")
    assert crt == boto
    assert crt["a.html"][0] == b"<p>a</p>" and crt["a.html"][2].startswith("text/html")
    assert crt["a.html"][3] == "max-age=60"
    assert crt["a.html"][4]["mtime"] == "1500000000.123456789"
