"""--compare checksum/size, --force, --ignore-existing and --limit against the real server."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tree, write_tree
from tests.integration.conftest import Run, keys
from tests.integration.proxy import fault_proxy

pytestmark = pytest.mark.integration

SITE = {f"p{i}/page{i}.html": f"<html>page {i}</html>" for i in range(30)}


def rebuild(src: Path) -> None:
    """Write every file again with the same bytes: new mtimes, as a site generator does."""
    stamp = time.time()
    for path in src.rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes())
            os.utime(path, (stamp, stamp))


def test_rebuilt_tree_uploads_nothing_by_checksum_or_by_mtime(
    cli: Any, bucket: str, tree: Tree
) -> None:
    src = tree(SITE)
    assert cli("push", src, f"s3://{bucket}").code == 0
    rebuild(src)

    checksum = cli("push", "--json", "--compare", "checksum", src, f"s3://{bucket}")
    by_time = cli("push", "--json", "-n", src, f"s3://{bucket}")
    by_size = cli("push", "--json", "--compare", "size", src, f"s3://{bucket}")

    for run in (checksum, by_time):  # the new mtimes are ambiguous: the bytes decide
        assert run.code == 0, run.err
        assert run.actions("upload") == {}
        assert run.summary()["unchanged"] == 30
        assert run.summary()["hashed_bytes"] == sum(len(v) for v in SITE.values())
        assert run.summary()["settled"] == {"content": 30, "metadata": 0, "unverified": 0}
    assert by_size.actions("upload") == {} and by_size.summary()["hashed_bytes"] == 0


def test_same_size_edit_checksum_uploads_it_size_does_not(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree({"a.txt": "hello world", "b.txt": "unchanged"})
    assert cli("push", src, f"s3://{bucket}").code == 0
    (src / "a.txt").write_text("HELLO WORLD")  # same size

    size_only = cli("push", "--json", "--compare", "size", src, f"s3://{bucket}")
    checksum = cli("push", "--json", "--compare", "checksum", src, f"s3://{bucket}")

    assert size_only.actions("upload") == {}
    assert checksum.actions("upload") == {"a.txt": "content"}
    assert s3.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"HELLO WORLD"


def requests_by_method(run_proxy: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for seen in run_proxy.seen:
        counts[seen.method] = counts.get(seen.method, 0) + 1
    return counts


@pytest.mark.parametrize("part_size", ["5MiB", "8MiB"])
def test_multipart_object_is_recognised_by_listing_alone_with_or_without_index(
    cli: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path, part_size: str
) -> None:
    data = os.urandom(12 * 1024 * 1024 + 7)
    src = tree({"big.bin": data})
    index = tmp_path / "i.db"
    sizes = ("--multipart-threshold", "5MiB", "--part-size", "5MiB")
    assert cli("push", *sizes, "--index", index, src, f"s3://{bucket}").code == 0
    rebuild(src)
    index.unlink()  # the index is gone: only the listing's ETag is left to compare with

    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        run = cli(
            "push",
            "--json",
            "--compare",
            "checksum",
            "--multipart-threshold",
            "5MiB",
            "--part-size",
            part_size,
            src,
            f"s3://{bucket}",
            endpoint=proxy.endpoint,
        )

    assert run.code == 0, run.err
    assert run.actions("upload") == {} and run.summary()["unchanged"] == 1
    assert requests_by_method(proxy) == {"GET": 1}  # one listing page: no HEAD, GET or PUT


def test_multipart_with_an_unusual_part_size_asks_the_object_once(
    cli: Any, server: Any, bucket: str, tree: Tree
) -> None:
    src = tree({"big.bin": os.urandom(13 * 1024 * 1024)})
    sizes = ("--multipart-threshold", "5MiB", "--part-size", "6MiB")  # 3 parts, like 5 MiB
    assert cli("push", *sizes, src, f"s3://{bucket}").code == 0
    rebuild(src)

    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        run = cli(
            "push",
            "--json",
            "--compare",
            "checksum",
            src,
            f"s3://{bucket}",
            endpoint=proxy.endpoint,
        )

    assert run.code == 0 and run.actions("upload") == {}
    assert requests_by_method(proxy) == {"GET": 1, "HEAD": 1}


def test_hash_cache_in_the_index_means_an_unchanged_tree_is_never_read_twice(
    cli: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(SITE)
    index = tmp_path / "i.db"
    first = cli("push", "--json", "--compare", "checksum", "--index", index, src, f"s3://{bucket}")
    rebuild(src)
    reread = cli("push", "--json", "--compare", "checksum", "--index", index, src, f"s3://{bucket}")
    cached = cli("push", "--json", "--compare", "checksum", "--index", index, src, f"s3://{bucket}")

    assert first.code == 0 and len(first.actions("upload")) == 30
    assert first.summary()["hashed_bytes"] == 0  # uploads learn their ETag from S3
    assert reread.actions("upload") == {}
    assert reread.summary()["hashed_bytes"] == sum(len(v) for v in SITE.values())
    assert cached.actions("upload") == {} and cached.summary()["hashed_bytes"] == 0


def test_force_and_ignore_existing(cli: Any, s3: Any, bucket: str, tree: Tree) -> None:
    src = tree({"a.txt": "a", "b.txt": "b"})
    assert cli("push", src, f"s3://{bucket}").code == 0
    s3.put_object(Bucket=bucket, Key="stale.txt", Body=b"s")
    (src / "a.txt").write_text("changed a")
    write_tree(src, {"new.txt": "n"})

    forced = cli("push", "--json", "-n", "--force", src, f"s3://{bucket}")
    only_new = cli("push", "--json", "--ignore-existing", src, f"s3://{bucket}")
    both = cli("push", "--force", "--ignore-existing", src, f"s3://{bucket}")

    assert forced.actions("upload") == {"a.txt": "forced", "b.txt": "forced", "new.txt": "new"}
    assert forced.actions("delete") == {"stale.txt": "gone"}
    assert only_new.actions("upload") == {"new.txt": "new"}
    assert s3.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"a"
    assert "stale.txt" not in keys(s3, bucket)  # deletes as usual
    assert both.code == 2 and "contradict" in both.err


def test_limit_stops_after_n_transfers_and_deletes_nothing(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    s3.put_object(Bucket=bucket, Key="stale.txt", Body=b"s")
    src = tree(SITE)

    look: Run = cli("push", "--json", "-n", "--limit", "5", src, f"s3://{bucket}")
    run: Run = cli("push", "--json", "--limit", "7", src, f"s3://{bucket}")

    assert len(look.actions("upload")) == 5 and look.summary()["limited"] == 25
    assert run.code == 0 and len(run.actions("upload")) == 7
    assert run.actions("delete") == {} and "stale.txt" in keys(s3, bucket)
    assert len(keys(s3, bucket)) == 8


def test_restore_checksum_and_force(
    cli: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree({"same.txt": "identical", "edited.txt": "original!"})
    assert cli("push", src, f"s3://{bucket}").code == 0
    dest = tmp_path / "d"
    write_tree(dest, {"same.txt": "identical", "edited.txt": "tampered!"})  # no xattr notes

    def restore(*args: str) -> Run:
        result: Run = cli(
            "restore", "--json", *args, f"s3://{bucket}", dest, "--endpoint-url", server.endpoint
        )
        return result

    checksum = restore("--compare", "checksum")
    forced = restore("--force")
    only_missing = restore("--ignore-existing")

    assert checksum.actions("download") == {"edited.txt": "content"}
    assert checksum.summary()["hashed_bytes"] == 18
    assert (dest / "edited.txt").read_text() == "original!"
    assert forced.actions("download") == {"same.txt": "forced", "edited.txt": "forced"}
    assert only_missing.actions("download") == {}
