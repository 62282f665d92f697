"""A file inside the fudge window is ambiguous, not changed: its bytes decide, no transfer.

Every tree here is written just before its first push (mtimes of now, inside the 20
minute window after LastModified minus the fudge), as a site generator leaves it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tree, write_tree
from tests.integration.conftest import Run, objects
from tests.integration.proxy import fault_proxy

pytestmark = pytest.mark.integration

SITE: dict[str, bytes | str] = {
    "index.html": "<html>home</html>",
    "css/site.css": "body { color: #333 }",
    "blog/post-1.html": "<html>first post</html>",
    "blog/post-2.html": "<html>second post</html>",
    "img/logo.png": bytes(range(256)) * 40,
    "empty.txt": "",
}
TOTAL = sum(len(v) for v in SITE.values())


def fresh(tree: Tree) -> Path:
    """Write SITE now: every mtime is seconds before the push that follows."""
    return tree(SITE, mtime=time.time())


def requests(proxy: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for seen in proxy.seen:
        counts[seen.method] = counts.get(seen.method, 0) + 1
    return counts


def unchanged(run: Run, kind: str) -> dict[str, str]:
    """Return key -> reason of the pairs a check found unchanged (needs --json)."""
    return {
        r["key"]: r["reason"]
        for r in run.json_lines()
        if r["type"] == kind and r["status"] == "unchanged"
    }


def test_push_right_after_a_push_of_a_fresh_tree_sends_no_put(
    cli: Any, server: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = fresh(tree)
    first = cli("push", "--json", src, f"s3://{bucket}")
    assert first.code == 0 and len(first.actions("upload")) == len(SITE)

    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        again = cli("push", "--json", src, f"s3://{bucket}", endpoint=proxy.endpoint)

    assert again.code == 0, again.err
    assert again.actions("upload") == {} and again.actions("delete") == {}
    assert unchanged(again, "upload") == dict.fromkeys(SITE, "content")
    summary = again.summary()
    assert summary["uploaded"] == 0 and summary["unchanged"] == len(SITE)
    assert summary["hashed_bytes"] == TOTAL  # only the ambiguous files were read, once
    assert summary["settled"] == {"content": len(SITE), "metadata": 0, "unverified": 0}
    assert requests(proxy) == {"GET": 1}  # the listing: no PUT, no HEAD
    assert objects(s3, bucket) == {
        k: v.encode() if isinstance(v, str) else v for k, v in SITE.items()
    }


def test_rewriting_files_with_the_same_bytes_uploads_nothing(
    cli: Any, bucket: str, tree: Tree
) -> None:
    src = fresh(tree)
    assert cli("push", src, f"s3://{bucket}").code == 0
    later = time.time() + 3600  # a build an hour later: far outside any window
    for rel, content in SITE.items():
        write_tree(src, {rel: content}, mtime=later)

    run = cli("push", "--json", src, f"s3://{bucket}")

    assert run.code == 0, run.err
    assert run.actions("upload") == {}
    assert unchanged(run, "upload") == dict.fromkeys(SITE, "content")


def test_same_size_edit_seconds_after_a_push_is_uploaded_for_its_content(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = fresh(tree)
    assert cli("push", src, f"s3://{bucket}").code == 0
    (src / "blog/post-1.html").write_text("<html>FIRST POST</html>")  # same size

    run = cli("push", "--json", "-v", src, f"s3://{bucket}")

    assert run.code == 0, run.err
    assert run.actions("upload") == {"blog/post-1.html": "content"}
    assert set(unchanged(run, "upload")) == set(SITE) - {"blog/post-1.html"}
    body = s3.get_object(Bucket=bucket, Key="blog/post-1.html")["Body"].read()
    assert body == b"<html>FIRST POST</html>"
    again = cli("push", "--json", src, f"s3://{bucket}")
    assert again.actions("upload") == {}


def test_verbose_run_says_how_each_ambiguous_file_was_settled(
    cli: Any, bucket: str, tree: Tree
) -> None:
    src = fresh(tree)
    assert cli("push", src, f"s3://{bucket}").code == 0
    (src / "css/site.css").write_text("body { color: #444 }")

    run = cli("push", "-v", src, f"s3://{bucket}")

    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert "upload css/site.css [content] (20 B)" in lines
    assert "unchanged index.html [content] (17 B)" in lines
    assert "6 compared (6 by content)" in lines[-1]


def test_dry_run_reads_the_ambiguous_files_and_says_what_it_would_do(
    cli: Any, bucket: str, tree: Tree
) -> None:
    src = fresh(tree)
    assert cli("push", src, f"s3://{bucket}").code == 0
    (src / "index.html").write_text("<html>HOME</html>")

    run = cli("push", "--json", "-n", src, f"s3://{bucket}")

    assert run.code == 0
    assert run.actions("upload") == {"index.html": "content"}
    assert len(unchanged(run, "upload")) == len(SITE) - 1


def test_with_a_rebuilt_index_the_hashes_are_read_once(
    cli: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = fresh(tree)
    index = tmp_path / "i.db"
    assert cli("push", src, f"s3://{bucket}").code == 0
    later = time.time() + 60
    for rel, content in SITE.items():
        write_tree(src, {rel: content}, mtime=later)

    built = cli("push", "--json", "--index", index, src, f"s3://{bucket}")
    trusted = cli("push", "--json", "--index", index, src, f"s3://{bucket}")
    relisted = cli("push", "--json", "--index", index, "--ignore-index", src, f"s3://{bucket}")

    assert built.actions("upload") == {} and built.summary()["hashed_bytes"] == TOTAL
    assert trusted.actions("upload") == {} and trusted.summary()["hashed_bytes"] == 0
    # listing again, the index's cached hashes settle every ambiguous file: nothing read
    assert relisted.actions("upload") == {} and relisted.summary()["hashed_bytes"] == 0


def test_compressed_objects_are_settled_by_the_md5_they_recorded(
    cli: Any, bucket: str, tree: Tree
) -> None:
    src = fresh(tree)
    gzip = ("--gzip",)
    assert cli("push", *gzip, src, f"s3://{bucket}").code == 0
    later = time.time() + 60
    write_tree(src, {"index.html": SITE["index.html"]}, mtime=later)  # same bytes
    write_tree(src, {"blog/post-2.html": "<html>SECOND POST</html>"}, mtime=later)

    run = cli("push", "--json", *gzip, src, f"s3://{bucket}")

    assert run.code == 0, run.err
    assert run.actions("upload") == {"blog/post-2.html": "content"}


def test_restore_over_a_copy_with_other_mtimes_fetches_nothing(
    cli: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = fresh(tree)
    assert cli("push", src, f"s3://{bucket}").code == 0
    dest = tmp_path / "copied-by-hand"
    write_tree(dest, SITE, mtime=time.time() - 7 * 86400)  # same bytes, a week older
    os.utime(dest / "index.html", (1, 1))

    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        run = cli("restore", "--json", f"s3://{bucket}", dest, "--endpoint-url", proxy.endpoint)
    again = cli("restore", "--json", f"s3://{bucket}", dest, "--endpoint-url", server.endpoint)

    assert run.code == 0, run.err
    assert run.actions("download") == {}
    assert unchanged(run, "download") == dict.fromkeys(SITE, "content")
    assert requests(proxy) == {"GET": 1}  # the listing: no HEAD, no object fetched
    assert again.summary()["hashed_bytes"] == 0  # the files are marked as restored now


def test_copy_by_mtime_of_sources_written_again_with_the_same_bytes(
    cli: Any, server: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = fresh(tree)
    endpoint = ("--endpoint-url", server.endpoint)
    assert cli("push", src, f"s3://{bucket}/a").code == 0
    assert cli("copy", f"s3://{bucket}/a", f"s3://{bucket}/b", *endpoint).code == 0
    # the same bytes uploaded again after the copy: LastModified is later, ETag the same
    s3.put_object(Bucket=bucket, Key="a/index.html", Body=b"<html>home</html>")
    s3.put_object(Bucket=bucket, Key="a/css/site.css", Body=b"body { color: #999 }")

    run = cli(
        "copy", "--json", "--compare", "mtime", f"s3://{bucket}/a", f"s3://{bucket}/b", *endpoint
    )

    assert run.code == 0, run.err
    assert run.actions("copy") == {"b/a/css/site.css": "content"}  # copy puts a under b
    copied = s3.get_object(Bucket=bucket, Key="b/a/css/site.css")["Body"].read()
    assert copied == b"body { color: #999 }"


def test_trusted_index_settles_a_rewrite_with_the_same_bytes_by_content(
    cli: Any, server: Any, s3: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = fresh(tree)
    index = tmp_path / "i.db"
    later = time.time() + 3600

    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:  # the index's endpoint
        header = ("--header", "Cache-Control: max-age=60")  # rules set: headers are checked
        push = ("push", "--json", *header, "--index", index, src, f"s3://{bucket}")
        assert cli(*push, endpoint=proxy.endpoint).code == 0
        for rel, content in SITE.items():
            write_tree(src, {rel: content}, mtime=later)
        (src / "blog/post-2.html").write_text("<html>SECOND POST</html>")
        before = len(proxy.seen)
        run = cli(*push, endpoint=proxy.endpoint)
        sent = [seen.method for seen in proxy.seen[before:]]
        before = len(proxy.seen)
        again = cli(*push, endpoint=proxy.endpoint)
        sent_again = len(proxy.seen) - before

    assert run.code == 0, run.err
    assert run.summary()["remote"] == "index"
    assert run.actions("upload") == {"blog/post-2.html": "content"}
    assert sent == ["PUT"]  # no listing, no HEAD: the index knew every ETag
    assert again.actions("upload") == {} and again.summary()["hashed_bytes"] == 0
    assert sent_again == 0  # the index kept each object's headers digest: no HEAD
    assert s3.get_object(Bucket=bucket, Key="blog/post-2.html")["Body"].read() == (
        b"<html>SECOND POST</html>"
    )
