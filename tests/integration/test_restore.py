"""s3sync restore against a real SeaweedFS: fidelity, increments, hostile keys, crashes."""

from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

import pytest

from tests.conftest import Tree
from tests.integration.conftest import Run, cli_env
from tests.integration.proxy import Stall, fault_proxy
from tests.integration.test_push_errors import run_unprivileged

pytestmark = pytest.mark.integration


@pytest.fixture
def rcli(cli: Any, server: Any) -> Any:
    """The CLI with the endpoint added to restore runs too."""

    def run(*args: str | Path, endpoint: str | None = None) -> Run:
        result: Run = cli(*args, "--endpoint-url", endpoint or server.endpoint)
        return result

    return run


def tree_files(root: Path) -> dict[str, tuple[bytes, int]]:
    """Return relpath -> (bytes, mtime_ns) for every regular file under *root*."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            found[path.relative_to(root).as_posix()] = (path.read_bytes(), path.stat().st_mtime_ns)
    return found


SITE: dict[str, bytes | str] = {
    "index.html": "<html>home</html>",
    "a/b/c.css": "body{}",
    "a/empty.txt": b"",
    "café/naïve résumé.txt": "unicode",
    "deep/" * 12 + "leaf.bin": os.urandom(5000),
    "big.bin": os.urandom(9 * 1024 * 1024),  # multipart on the way up
}


def test_push_then_restore_reproduces_the_tree_and_every_mtime(
    cli: Any, rcli: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(SITE)
    os.utime(src / "index.html", ns=(1, 1_600_000_000_123_456_789))
    assert cli("push", src, f"s3://{bucket}/site").code == 0
    dest = tmp_path / "restored"

    run = rcli("restore", "--json", f"s3://{bucket}/site", dest)

    assert run.code == 0, run.err
    assert tree_files(dest) == tree_files(src)
    compared = filecmp.dircmp(src, dest)
    assert compared.left_only == compared.right_only == compared.diff_files == []
    assert (dest / "index.html").stat().st_mtime_ns == 1_600_000_000_123_456_789
    assert set(run.actions("download").values()) == {"new"}
    assert run.summary()["downloaded"] == len(SITE)


def test_second_restore_downloads_nothing_and_a_replaced_object_comes_again(
    cli: Any, rcli: Any, s3: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree({"a.txt": "version 1", "b.txt": "b"})
    assert cli("push", src, f"s3://{bucket}").code == 0
    dest = tmp_path / "restored"
    assert rcli("restore", f"s3://{bucket}", dest).code == 0

    again = rcli("restore", "--json", f"s3://{bucket}", dest)
    head = s3.head_object(Bucket=bucket, Key="a.txt")
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"version 2", Metadata=head["Metadata"])
    replaced = rcli("restore", "--json", f"s3://{bucket}", dest)

    assert again.code == 0 and again.actions("download") == {}
    assert again.summary()["unchanged"] == 2
    assert replaced.actions("download") == {"a.txt": "content"}  # same size, same mtime
    assert (dest / "a.txt").read_bytes() == b"version 2"


def test_files_not_restored_by_s3sync_are_verified_by_content(
    cli: Any, rcli: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree({"same.txt": "same", "edited.txt": "12345"})
    assert cli("push", src, f"s3://{bucket}").code == 0
    dest = tmp_path / "copied-by-hand"
    dest.mkdir()
    (dest / "same.txt").write_bytes(b"same")
    os.utime(dest / "same.txt", ns=(1, 1))  # another mtime: the bytes decide
    (dest / "edited.txt").write_bytes(b"54321")  # same size, other content, new mtime

    run = rcli("restore", "--json", f"s3://{bucket}", dest)
    again = rcli("restore", "--json", f"s3://{bucket}", dest)

    assert run.actions("download") == {"edited.txt": "content"}
    checked = [(r["key"], r["reason"]) for r in run.json_lines() if r.get("status") == "unchanged"]
    assert checked == [("same.txt", "content")]
    assert (dest / "edited.txt").read_bytes() == b"12345"
    assert again.actions("download") == {} and again.summary()["unchanged"] == 2


def test_objects_without_mtime_metadata_get_last_modified(
    rcli: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="other-tool.txt", Body=b"x")
    modified = s3.head_object(Bucket=bucket, Key="other-tool.txt")["LastModified"]

    run = rcli("restore", f"s3://{bucket}", tmp_path / "d")

    assert run.code == 0
    assert (tmp_path / "d/other-tool.txt").stat().st_mtime == modified.timestamp()


def test_generated_index_pages_are_not_restored(
    rcli: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(
        Bucket=bucket, Key="docs/index.html", Body=b"<generated>", Metadata={"generated": "true"}
    )
    s3.put_object(Bucket=bucket, Key="docs/page.html", Body=b"real")

    run = rcli("restore", f"s3://{bucket}", tmp_path / "d")

    assert run.code == 0
    assert tree_files(tmp_path / "d").keys() == {"docs/page.html"}


def listing(bucket: str, prefix: str, keys: list[str]) -> bytes:
    """Return a ListObjectsV2 answer as S3 gives it to boto3 (keys URL-encoded)."""
    contents = "".join(
        f"<Contents><Key>{escape(quote(k, safe='/'))}</Key><LastModified>2026-01-01T00:00:00.000Z"
        "</LastModified><ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag>"
        "<Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>"
        for k in keys
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
        'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>{bucket}</Name><Prefix>{prefix}</Prefix><KeyCount>{len(keys)}</KeyCount>"
        "<MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
        f"{contents}</ListBucketResult>"
    ).encode()


HOSTILE = [
    "p/../escaped.txt",
    "p/a/../../escaped2.txt",
    "p//etc/passwd",
    "p/./dot.txt",
    "p/back\\..\\slash.txt",
    "p/nul\0byte.txt",
    "p/..",
    "p/sub/../../../../tmp/x",
]


def test_hostile_keys_are_refused_and_nothing_lands_outside(
    rcli: Any, server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="p/good.txt", Body=b"a")
    s3.put_object(Bucket=bucket, Key="p/ctl\x01char.txt", Body=b"a")  # stored as is
    keys = ["p/good.txt", "p/ctl\x01char.txt", *HOSTILE]
    body = listing(bucket, "p/", keys)

    def forged(method: str, path: str, n: int) -> tuple[int, bytes] | None:
        return (200, body) if method == "GET" and "list-type=2" in path else None

    dest = tmp_path / "jail" / "dest"
    with fault_proxy(server.endpoint, forged) as proxy:
        run = rcli("restore", "--json", f"s3://{bucket}/p", dest, endpoint=proxy.endpoint)
        fetched = [s.path for s in proxy.seen if s.method == "GET" and "list-type" not in s.path]

    assert run.code == 1
    refused = {r["path"] for r in run.json_lines() if r["type"] == "error"}
    assert refused == set(keys) - {"p/good.txt", "p/ctl\x01char.txt"}  # a legal, odd name
    assert sorted(fetched) == [f"/{bucket}/p/ctl%01char.txt", f"/{bucket}/p/good.txt"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "jail",
        "jail/dest",
        "jail/dest/ctl\x01char.txt",
        "jail/dest/good.txt",
    ]


def test_symlinks_in_the_destination_are_never_followed(
    rcli: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "link")
    os.symlink(outside / "victim.txt", dest / "file-link.txt")
    s3.put_object(Bucket=bucket, Key="link/evil.txt", Body=b"evil")
    s3.put_object(Bucket=bucket, Key="file-link.txt", Body=b"replaces the link, not its target")

    run = rcli("restore", "--json", f"s3://{bucket}", dest)

    assert run.code == 1
    failed = {r["key"]: r["error"] for r in run.json_lines() if r.get("status") == "failed"}
    assert "link/evil.txt" in failed and "symlink" in failed["link/evil.txt"]
    assert list(outside.iterdir()) == []
    assert not (dest / "file-link.txt").is_symlink()
    assert (dest / "file-link.txt").read_bytes() == b"replaces the link, not its target"


def test_keys_that_collide_locally_are_reported_not_crashed_on(
    rcli: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="a", Body=b"file a")
    s3.put_object(Bucket=bucket, Key="a/b", Body=b"file a/b")

    run = rcli("restore", "--json", f"s3://{bucket}", tmp_path / "d")

    assert run.code == 1, run.err
    outcomes = {r["key"]: r["status"] for r in run.json_lines() if r["type"] == "download"}
    assert sorted(outcomes.values()) == ["failed", "ok"]
    assert "Traceback" not in run.err


def test_unwritable_destination_is_fatal_before_any_download(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    dest = tmp_path / "readonly"
    dest.mkdir()
    os.chmod(dest, 0o555)
    try:
        run = run_unprivileged(server, "restore", f"s3://{bucket}", dest)
    finally:
        os.chmod(dest, 0o755)

    assert run.code == 3
    assert "not writable" in run.err and len(run.err.strip().splitlines()) == 1
    assert list(dest.iterdir()) == []


def test_killed_restore_leaves_no_partial_file_and_the_rerun_completes(
    server: Any, rcli: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="big.bin", Body=data)
    dest = tmp_path / "d"

    def stall_download(method: str, path: str, n: int) -> Stall | None:
        return Stall(after=1024 * 1024) if method == "GET" and path.endswith("/big.bin") else None

    with fault_proxy(server.endpoint, stall_download) as proxy:
        argv = [
            sys.executable,
            "-m",
            "s3sync",
            "restore",
            f"s3://{bucket}",
            str(dest),
            "--endpoint-url",
            proxy.endpoint,
        ]
        child = subprocess.Popen(
            argv, env=cli_env(server), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proxy.stalled.wait(timeout=60)  # a megabyte is on its way to disk
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    leftovers = sorted(p.name for p in dest.iterdir())

    rerun = rcli("restore", "--json", f"s3://{bucket}", dest)

    assert "big.bin" not in leftovers  # only a temporary name, if anything
    assert all(name.startswith(".s3sync-") and name.endswith(".tmp") for name in leftovers)
    assert rerun.code == 0 and rerun.actions("download") == {"big.bin": "new"}
    assert sorted(p.name for p in dest.iterdir()) == ["big.bin"]  # the temp file is gone
    assert (dest / "big.bin").read_bytes() == data


def test_delete_removes_extra_local_files_after_a_clean_run(
    cli: Any, rcli: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree({"keep.txt": "k", "sub/keep2.txt": "k2"})
    assert cli("push", src, f"s3://{bucket}").code == 0
    dest = tmp_path / "d"
    assert rcli("restore", f"s3://{bucket}", dest).code == 0
    (dest / "extra.txt").write_text("x")
    (dest / "gone" / "deeper").mkdir(parents=True)
    (dest / "gone" / "deeper" / "x.txt").write_text("x")

    kept = rcli("restore", "--json", f"s3://{bucket}", dest)
    assert kept.actions("remove") == {} and (dest / "extra.txt").exists()
    removed = rcli("restore", "--json", "--delete", f"s3://{bucket}", dest)

    assert removed.code == 0
    assert removed.actions("remove") == {"extra.txt": "gone", "gone/deeper/x.txt": "gone"}
    assert sorted(tree_files(dest)) == ["keep.txt", "sub/keep2.txt"]
    assert not (dest / "gone").exists()  # emptied directories go too


def test_delete_is_withheld_by_an_empty_listing_and_by_max_delete(
    cli: Any, rcli: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    dest = tmp_path / "d"
    dest.mkdir()
    for i in range(4):
        (dest / f"local{i}.txt").write_text("mine")

    empty = rcli("restore", "--json", "--delete", f"s3://{bucket}/nothing-here", dest)
    src = tree({"local0.txt": "mine"})
    assert cli("push", src, f"s3://{bucket}/some").code == 0
    capped = rcli("restore", "--json", "--delete", "--max-delete", "2", f"s3://{bucket}/some", dest)

    assert empty.code == 5 and "is empty" in empty.summary()["withheld_reason"]
    assert (
        capped.code == 5
        and "3 deletes exceed --max-delete 2" in capped.summary()["withheld_reason"]
    )
    assert len(list(dest.iterdir())) == 4


def test_restore_dry_run_changes_nothing(
    cli: Any, rcli: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree({"a.txt": "a"})
    assert cli("push", src, f"s3://{bucket}").code == 0
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "extra.txt").write_text("x")

    run = rcli("restore", "-n", "--json", "--delete", f"s3://{bucket}", dest)

    assert run.code == 0
    assert {r["status"] for r in run.json_lines() if r["type"] != "summary"} == {"dry-run"}
    assert sorted(p.name for p in dest.iterdir()) == ["extra.txt"]
    assert json.loads(run.out.splitlines()[-1])["dry_run"] is True
