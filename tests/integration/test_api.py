"""The Python API against a real SeaweedFS: Bucket as a mapping, Object, push from Python."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import s3sync
from tests.conftest import Tree
from tests.integration.conftest import cli_env
from tests.integration.proxy import fault_proxy

pytestmark = pytest.mark.integration


@pytest.fixture
def env(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)


def test_every_mapping_operation(server: Any, s3: Any, bucket: str, env: None) -> None:
    s3.put_object(Bucket=bucket, Key="outside.txt", Body=b"not in the namespace")
    with s3sync.Bucket(f"s3://{bucket}/ns", endpoint_url=server.endpoint) as b:
        b["a.txt"] = "text, stored as UTF-8: é"
        b["dir/b.bin"] = b"\x00\x01"
        b["c.json"] = s3sync.Object(b"{}", metadata={"owner": "me"}, cache_control="no-cache")

        assert sorted(b) == ["a.txt", "c.json", "dir/b.bin"]
        assert len(b) == 3
        assert "a.txt" in b and "outside.txt" not in b and "missing" not in b
        assert b["a.txt"].read() == "text, stored as UTF-8: é".encode()
        assert list(b.keys(prefix="dir/")) == ["dir/b.bin"]
        item = b["c.json"]
        assert item.metadata == {"owner": "me"}
        assert item.content_type == "application/json; charset=utf-8"
        assert item.headers == {"cache_control": "no-cache"}
        assert item.size == 2 and item.etag == '"99914b932bd37a50b983c5e7c90ae93b"'
        assert item.last_modified is not None
        with pytest.raises(KeyError):
            b["missing"]
        with pytest.raises(s3sync.NoSuchKey):
            del b["missing"]
        del b["a.txt"]
        assert "a.txt" not in b
        b["copy.json"] = b["c.json"]  # an Object read from a bucket stores data and metadata
        assert b["copy.json"].metadata == {"owner": "me"}
        assert b.get("nothing") is None
        assert b.setdefault("d.txt", s3sync.Object(b"x")).read() == b"x"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"outside.txt", "ns/c.json", "ns/copy.json", "ns/dir/b.bin", "ns/d.txt"}


def test_iteration_pages_through_more_than_a_thousand_keys(
    server: Any, s3: Any, bucket: str, env: None
) -> None:
    names = [f"k{i:05d}" for i in range(1150)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: s3.put_object(Bucket=bucket, Key=f"p/{n}", Body=b""), names))
    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        b = s3sync.Bucket(f"s3://{bucket}/p", endpoint_url=proxy.endpoint)
        first = next(iter(b))
        requests_for_first = len(proxy.seen)
        everything = list(b)
        b.close()

    assert first == "k00000" and requests_for_first == 1  # lazily: one page for one key
    assert everything == names


def test_data_is_fetched_only_when_read(server: Any, bucket: str, env: None) -> None:
    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        b = s3sync.Bucket(f"s3://{bucket}", endpoint_url=proxy.endpoint)
        b["lazy.txt"] = "payload"
        before = len(proxy.seen)
        item = b["lazy.txt"]
        methods = [s.method for s in proxy.seen[before:]]
        data = item.read()
        after = [s.method for s in proxy.seen[before:]]
        b.close()

    assert methods == ["HEAD"]  # size, ETag and metadata, but no data yet
    assert after == ["HEAD", "GET"] and data == b"payload"


def test_presigned_url_gets_the_bytes_without_credentials(
    server: Any, bucket: str, env: None
) -> None:
    with s3sync.Bucket(f"s3://{bucket}", endpoint_url=server.endpoint) as b:
        b["shared.txt"] = "for anyone with the link"
        url = b.url("shared.txt", expires=60)

    assert urllib.request.urlopen(url, timeout=10).read() == b"for anyone with the link"


def test_sync_file_uploads_downloads_and_skips(
    server: Any, bucket: str, env: None, tmp_path: Path
) -> None:
    path = tmp_path / "master.txt"
    path.write_text("version 1")
    with s3sync.Bucket(f"s3://{bucket}", endpoint_url=server.endpoint) as b:
        assert b.sync_file("m.txt", str(path)) == "uploaded"
        assert b.sync_file("m.txt", str(path)) == "unchanged"
        path.write_text("version 2")
        assert b.sync_file("m.txt", str(path)) == "uploaded"
        path.unlink()
        assert b.sync_file("m.txt", str(path)) == "downloaded"
    assert path.read_text() == "version 2"


def test_a_50_mb_file_object_is_stored_with_bounded_memory(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(50 * 1024 * 1024))
    script = textwrap.dedent(f"""
        import resource, sys, s3sync
        b = s3sync.Bucket("s3://{bucket}", endpoint_url="{server.endpoint}",
                          part_size=5 * 1024 * 1024)
        with open(sys.argv[1], "rb") as f:
            b[sys.argv[2]] = f
        b.close()
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    tiny = tmp_path / "tiny.bin"
    tiny.write_bytes(b"x")

    def peak(path: Path, key: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", script, str(path), key],
            env=cli_env(server),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return int(done.stdout.strip()) * 1024

    grown = peak(big, "big.bin") - peak(tiny, "tiny.bin")

    assert grown < 30 * 1024 * 1024, grown
    body = s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
    assert body == big.read_bytes()


def test_push_from_python_reports_what_the_cli_reports(
    server: Any, cli: Any, s3: Any, bucket: str, tree: Tree, env: None
) -> None:
    src = tree({"a.html": "a", "b/c.css": "c", "d.txt": "d"})
    s3.put_object(Bucket=bucket, Key="one/stale", Body=b"x")
    s3.put_object(Bucket=bucket, Key="two/stale", Body=b"x")

    report = s3sync.push(str(src), f"s3://{bucket}/one", endpoint_url=server.endpoint)
    run = cli("push", "--json", src, f"s3://{bucket}/two")

    summary = run.summary()
    assert report.exit_code == summary["exit_code"] == 0
    assert (report.uploaded, report.deleted, report.uploaded_bytes) == (
        summary["uploaded"],
        summary["deleted"],
        summary["uploaded_bytes"],
    )
    python_actions = {
        (o.action.key.split("/", 1)[1], o.action.reason.value) for o in report.outcomes
    }
    cli_actions = {
        (r["key"].split("/", 1)[1], r["reason"]) for r in run.json_lines() if r["type"] != "summary"
    }
    assert python_actions == cli_actions
    assert s3.get_object(Bucket=bucket, Key="one/a.html")["Body"].read() == b"a"
