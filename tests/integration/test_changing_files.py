"""Files that change under a push: the object is one version of the file, never a mix."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tree
from tests.integration.conftest import Run, objects
from tests.integration.proxy import Fault, Hold, fault_proxy

MIB = 1024 * 1024
PARTS = ("--multipart-threshold", "5MiB", "--part-size", "5MiB", "--json")


@pytest.mark.parametrize("rewrites", [1, 3])
def test_a_file_rewritten_during_its_multipart_upload_never_lands_mixed(
    rewrites: int, cli: Any, s3: Any, server: Any, bucket: str, tree: Tree
) -> None:
    versions = [os.urandom(11 * MIB) for _ in range(rewrites + 1)]
    src = tree({"big.bin": versions[0], "small.txt": "small"})
    big = src / "big.bin"
    releases: list[threading.Event] = []
    held = threading.Semaphore(0)

    def rule(method: str, path: str, _n: int) -> Fault | None:
        # hold the first part of each attempt while the file is rewritten under it
        first_part = re.search(r"[?&]partNumber=1(&|$)", path)
        if method == "PUT" and first_part and len(releases) < rewrites:
            releases.append(threading.Event())
            held.release()
            return Hold(releases[-1])
        return None

    result: list[Run] = []
    with fault_proxy(server.endpoint, rule) as proxy:
        runner = threading.Thread(
            target=lambda: result.append(
                cli("push", *PARTS, src, f"s3://{bucket}", endpoint=proxy.endpoint)
            )
        )
        runner.start()
        for n in range(rewrites):
            assert held.acquire(timeout=60), "the upload never reached its first part"
            big.write_bytes(versions[n + 1])
            os.utime(big, (1_600_000_000 + n, 1_600_000_000 + n))
            releases[n].set()
        runner.join(120)
    (run,) = result
    stored = objects(s3, bucket)
    assert stored.get("small.txt") == b"small"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    if rewrites < 3:  # read again from the start, and stored as the version that was read
        assert run.code == 0, run.err
        assert stored["big.bin"] == versions[-1]
        head = s3.head_object(Bucket=bucket, Key="big.bin")
        assert head["Metadata"]["mtime"] == "1600000000"
    else:  # still changing after three reads: reported, nothing stored, deletes withheld
        assert run.code == 1
        (failed,) = [r for r in run.json_lines() if r.get("status") == "failed"]
        assert "changed while being read 3 times" in failed["error"]
        assert "big.bin" not in stored
    rerun = cli("push", *PARTS, src, f"s3://{bucket}")
    assert rerun.code == 0 and objects(s3, bucket)["big.bin"] == versions[-1]


def test_files_deleted_or_replaced_by_a_directory_after_the_scan_are_reported(
    cli: Any, s3: Any, server: Any, bucket: str, tree: Tree
) -> None:
    src = tree({"gone.txt": "soon gone", "dir-now.txt": "soon a directory", "kept.txt": "kept"})
    s3.put_object(Bucket=bucket, Key="stale.txt", Body=b"stale")
    release = threading.Event()
    held = threading.Event()

    def rule(method: str, _path: str, _n: int) -> Fault | None:
        # hold the listing: the walk has seen every file, nothing is uploaded yet
        if method == "GET" and not held.is_set():
            held.set()
            return Hold(release)
        return None

    result: list[Run] = []
    with fault_proxy(server.endpoint, rule) as proxy:
        runner = threading.Thread(
            target=lambda: result.append(
                cli("push", "--json", "-w", "1", src, f"s3://{bucket}", endpoint=proxy.endpoint)
            )
        )
        runner.start()
        assert held.wait(60)
        (src / "gone.txt").unlink()
        (src / "dir-now.txt").unlink()
        (src / "dir-now.txt").mkdir()
        release.set()
        runner.join(120)
    (run,) = result
    assert run.code == 1, run.err
    errors = {r["path"]: r["error"] for r in run.json_lines() if r.get("status") == "failed"}
    assert errors.keys() == {"gone.txt", "dir-now.txt"}
    assert "vanished" in errors["gone.txt"]
    assert "directory" in errors["dir-now.txt"]
    assert objects(s3, bucket) == {"kept.txt": b"kept", "stale.txt": b"stale"}  # no deletes
    rerun = cli("push", src, f"s3://{bucket}")
    assert rerun.code == 0 and objects(s3, bucket) == {"kept.txt": b"kept"}


def test_files_rewritten_in_place_all_through_the_push_never_land_mixed(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    sizes = {"small.bin": 4 * MIB, "large.bin": 12 * MIB}  # one PutObject, and parts
    src = tree({name: b"A" * size for name, size in sizes.items()})
    stop = threading.Event()

    def rewrite(path: Path, size: int) -> None:
        letters = [b"A" * size, b"B" * size]
        with open(path, "r+b") as f:  # in place: a reader can catch it half written
            n = 0
            while not stop.is_set():
                n += 1
                f.seek(0)
                f.write(letters[n % 2])
                f.flush()

    writers = [threading.Thread(target=rewrite, args=(src / n, s)) for n, s in sizes.items()]
    for w in writers:
        w.start()
    try:
        run = cli("push", *PARTS, src, f"s3://{bucket}")
    finally:
        stop.set()
        for w in writers:
            w.join()

    assert run.code in (0, 1), run.err
    for key, body in objects(s3, bucket).items():
        assert body in (b"A" * sizes[key], b"B" * sizes[key]), f"{key} holds a mix"
    failed = [r for r in run.json_lines() if r.get("status") == "failed"]
    assert all("changed while being read 3 times" in r["error"] for r in failed)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    rerun = cli("push", *PARTS, src, f"s3://{bucket}")
    assert rerun.code == 0
    assert objects(s3, bucket) == {n: (src / n).read_bytes() for n in sizes}
