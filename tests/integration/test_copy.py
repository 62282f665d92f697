"""s3sync copy against a real SeaweedFS: server-side, incremental, headers kept."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from tests.integration.conftest import Run, keys, objects
from tests.integration.proxy import fault_proxy

pytestmark = pytest.mark.integration


@pytest.fixture
def dst(s3: Any) -> str:
    """A second, empty bucket."""
    name = f"d-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def ccli(cli: Any, server: Any) -> Any:
    """The CLI with the endpoint added."""

    def run(*args: Any, endpoint: str | None = None) -> Run:
        result: Run = cli(*args, "--endpoint-url", endpoint or server.endpoint)
        return result

    return run


HEADERS = {
    "ContentType": "text/html; charset=utf-8",
    "CacheControl": "max-age=300",
    "ContentDisposition": "inline",
    "ContentLanguage": "en",
    "Metadata": {"mtime": "1700000000.5", "owner": "web"},
}


def put(s3: Any, bucket: str, key: str, body: bytes, **extra: Any) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body, **{**HEADERS, **extra})


def described(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    head = s3.head_object(Bucket=bucket, Key=key)
    wanted = ("ContentType", "CacheControl", "ContentDisposition", "ContentLanguage")
    found = {name: head.get(name) for name in wanted}
    found["Metadata"] = {k: v for k, v in head["Metadata"].items() if not k.startswith("s3sync")}
    return found


def test_copy_keeps_bytes_headers_and_metadata_and_reruns_copy_nothing(
    ccli: Any, s3: Any, bucket: str, dst: str
) -> None:
    for i in range(5):
        put(s3, bucket, f"site/p{i}.html", f"page {i}".encode())

    first = ccli("copy", "--json", f"s3://{bucket}/site", f"s3://{dst}/mirror")
    again = ccli("copy", "--json", f"s3://{bucket}/site", f"s3://{dst}/mirror")
    put(s3, bucket, "site/p1.html", b"PAGE 1")  # same size, new content
    changed = ccli("copy", "--json", f"s3://{bucket}/site", f"s3://{dst}/mirror")

    assert first.code == 0, first.err
    assert set(first.actions("copy")) == {f"mirror/site/p{i}.html" for i in range(5)}
    assert again.actions("copy") == {} and again.summary()["unchanged"] == 5
    assert changed.actions("copy") == {"mirror/site/p1.html": "content"}
    assert objects(s3, dst) == {
        f"mirror/site/p{i}.html": (b"PAGE 1" if i == 1 else f"page {i}".encode()) for i in range(5)
    }
    assert described(s3, dst, "mirror/site/p3.html") == HEADERS


def test_trailing_star_copies_the_contents_without_the_segment(
    ccli: Any, s3: Any, bucket: str, dst: str
) -> None:
    put(s3, bucket, "photos/2024/a.jpg", b"a")
    put(s3, bucket, "photos/b.jpg", b"b")

    assert ccli("copy", f"s3://{bucket}/photos/*", f"s3://{dst}/backup").code == 0
    assert ccli("copy", f"s3://{bucket}/photos", f"s3://{dst}").code == 0

    assert keys(s3, dst) == {
        "backup/2024/a.jpg",
        "backup/b.jpg",
        "photos/2024/a.jpg",
        "photos/b.jpg",
    }


def test_large_object_goes_through_upload_part_copy_never_downloaded(
    ccli: Any, server: Any, s3: Any, bucket: str, dst: str
) -> None:
    data = os.urandom(20 * 1024 * 1024 + 3)
    put(s3, bucket, "big.bin", data)

    sizes = ("--multipart-threshold", "5MiB", "--part-size", "5MiB")
    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        run = ccli(
            "copy", "--json", *sizes, f"s3://{bucket}", f"s3://{dst}", endpoint=proxy.endpoint
        )
        requests = [(s.method, s.path) for s in proxy.seen]
    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        again = ccli(
            "copy", "--json", *sizes, f"s3://{bucket}", f"s3://{dst}", endpoint=proxy.endpoint
        )
        rerun = sorted(s.method for s in proxy.seen)

    assert run.code == 0, run.err
    part_copies = [p for m, p in requests if m == "PUT" and "partNumber=" in p]
    assert len(part_copies) == 5  # 4 parts of 5 MiB and a short one, each copied in S3
    listings = ("list-type=", "?uploads")  # of objects, and of uploads a killed run left
    assert [p for m, p in requests if m == "GET" and not any(x in p for x in listings)] == []
    assert s3.get_object(Bucket=dst, Key="big.bin")["Body"].read() == data
    assert described(s3, dst, "big.bin") == HEADERS
    assert again.actions("copy") == {} and again.summary()["unchanged"] == 1
    assert rerun == ["GET", "GET", "HEAD"]  # two listings, one look at the copy's metadata
    assert s3.list_multipart_uploads(Bucket=dst).get("Uploads", []) == []


def test_source_on_another_endpoint_streams_through(
    ccli: Any, server: Any, s3: Any, bucket: str, dst: str
) -> None:
    data = os.urandom(11 * 1024 * 1024)
    put(s3, bucket, "big.bin", data)
    put(s3, bucket, "small.txt", b"small")

    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        run = ccli(
            "copy",
            "--json",
            "--multipart-threshold",
            "5MiB",
            "--part-size",
            "5MiB",
            "--source-endpoint-url",
            proxy.endpoint,
            f"s3://{bucket}",
            f"s3://{dst}",
        )
        ranged = [s.path for s in proxy.seen if s.method == "GET" and "list-type" not in s.path]

    assert run.code == 0, run.err
    assert len(ranged) == 4  # three 5 MiB ranges of big.bin, and small.txt whole
    assert objects(s3, dst) == {"big.bin": data, "small.txt": b"small"}
    assert described(s3, dst, "small.txt") == HEADERS


def test_delete_is_off_by_default_and_guarded(ccli: Any, s3: Any, bucket: str, dst: str) -> None:
    put(s3, bucket, "a.txt", b"a")
    for key in ("a.txt", "extra1.txt", "extra2.txt"):
        put(s3, dst, key, b"x")

    kept = ccli("copy", "--json", f"s3://{bucket}", f"s3://{dst}")
    capped = ccli(
        "copy", "--json", "--delete", "--max-delete", "1", f"s3://{bucket}", f"s3://{dst}"
    )
    empty = ccli("copy", "--json", "--delete", f"s3://{bucket}/nothing", f"s3://{dst}")
    done = ccli("copy", "--json", "--delete", f"s3://{bucket}", f"s3://{dst}")

    assert kept.actions("delete") == {}
    assert capped.code == 5 and empty.code == 5
    assert done.code == 0
    assert done.actions("delete") == {"extra1.txt": "gone", "extra2.txt": "gone"}
    assert keys(s3, dst) == {"a.txt"}


def test_compare_size_force_and_dry_run(ccli: Any, s3: Any, bucket: str, dst: str) -> None:
    put(s3, bucket, "a.txt", b"aaaa")
    assert ccli("copy", f"s3://{bucket}", f"s3://{dst}").code == 0
    put(s3, bucket, "a.txt", b"bbbb")

    by_size = ccli("copy", "--json", "--compare", "size", f"s3://{bucket}", f"s3://{dst}")
    forced = ccli("copy", "--json", "-n", "--force", f"s3://{bucket}", f"s3://{dst}")

    assert by_size.actions("copy") == {}
    assert forced.actions("copy") == {"a.txt": "forced"}
    assert s3.get_object(Bucket=dst, Key="a.txt")["Body"].read() == b"aaaa"
