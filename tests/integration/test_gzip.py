"""push --gzip: compressed objects that gunzip to the files, are never uploaded again
while unchanged, and come back as the files on restore."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DAY, Tree
from tests.integration.conftest import Run
from tests.integration.proxy import Seen, fault_proxy

PAGE = b"<!doctype html><title>t</title>" + b"<p>hello, world</p>\n" * 300
SITE: dict[str, bytes] = {
    "index.html": PAGE,
    "blog/post.html": PAGE.replace(b"hello", b"post!"),
    "css/site.css": b"body { margin: 0 }\n" * 200,
    "js/app.js": b"export const answer = 42;\n" * 200,
    "data/feed.json": b'{"items": []}',
    "img/logo.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    "img/photo.png": os.urandom(3000),  # not text: sent as is
    "big.js": os.urandom(700_000).hex().encode(),  # compressed, still over the threshold
}
TEXT = sorted(k for k in SITE if not k.endswith(".png"))


def encodings(s3: Any, bucket: str) -> dict[str, str | None]:
    found = {}
    for key in SITE:
        got = s3.get_object(Bucket=bucket, Key=key)
        body = got["Body"].read()
        encoding = got.get("ContentEncoding")
        assert (gzip.decompress(body) if encoding == "gzip" else body) == SITE[key], key
        found[key] = encoding
    return found


def puts(seen: list[Seen]) -> list[str]:
    return [s.path for s in seen if s.method in ("PUT", "POST")]


@pytest.mark.parametrize("with_index", [False, True])
def test_text_objects_are_gzip_that_gunzips_to_the_file_and_are_not_sent_again(
    with_index: bool, cli: Any, s3: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(SITE)
    index = ("--index", tmp_path / "site.idx") if with_index else ()
    small_parts = ("--multipart-threshold", "512KiB")
    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:

        def push(*args: str | Path) -> tuple[Run, list[Seen]]:
            start = len(proxy.seen)
            run = cli(
                "push", "--json", "--gzip", *small_parts, *index, *args, src, f"s3://{bucket}",
                endpoint=proxy.endpoint,
            )  # fmt: skip
            return run, proxy.seen[start:]

        first, _ = push()
        second, seen = push()

    assert first.code == 0, first.err
    assert first.summary()["uploaded"] == len(SITE)
    assert encodings(s3, bucket) == {k: ("gzip" if k in TEXT else None) for k in SITE}
    head = s3.head_object(Bucket=bucket, Key="index.html")
    assert head["ContentType"] == "text/html; charset=utf-8"
    assert head["Metadata"]["s3sync-gzip"] == str(len(PAGE))  # the file's size, for the next run
    big = s3.head_object(Bucket=bucket, Key="big.js")
    assert big["ContentLength"] > 512 * 1024 and big["ETag"].endswith('-1"')  # multipart
    assert second.code == 0, second.err
    assert (second.summary()["uploaded"], second.summary()["unchanged"]) == (0, len(SITE))
    assert puts(seen) == []  # nothing sent again
    if with_index:
        assert seen == []  # the index knows each file's size and mtime: not one request
    else:  # the listing shows compressed sizes: each compressed object's metadata tells
        heads = sorted(s.path.removeprefix(f"/{bucket}/") for s in seen if s.method == "HEAD")
        assert heads == TEXT


def test_a_changed_file_is_found_by_its_recorded_size_even_with_an_old_mtime(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree(SITE)
    assert cli("push", "--gzip", src, f"s3://{bucket}").code == 0
    old = os.stat(src / "css/site.css").st_mtime
    (src / "css/site.css").write_bytes(b"body { margin: 1px }\n")
    os.utime(src / "css/site.css", (old, old))  # as a copy that keeps times would leave it

    run = cli("push", "--json", "--gzip", src, f"s3://{bucket}")

    assert run.code == 0, run.err
    assert run.actions("upload") == {"css/site.css": "size"}
    got = s3.get_object(Bucket=bucket, Key="css/site.css")["Body"].read()
    assert gzip.decompress(got) == b"body { margin: 1px }\n"


def test_checksum_mode_compares_the_md5_of_the_file_each_object_recorded(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree(SITE)
    assert cli("push", "--gzip", src, f"s3://{bucket}").code == 0
    stat = os.stat(src / "js/app.js")
    (src / "js/app.js").write_bytes(SITE["js/app.js"].replace(b"42", b"43"))  # same size
    os.utime(src / "js/app.js", ns=(stat.st_atime_ns, stat.st_mtime_ns))

    mtime = cli("push", "--json", "--gzip", src, f"s3://{bucket}")
    checksum = cli("push", "--json", "--gzip", "--compare", "checksum", src, f"s3://{bucket}")

    assert mtime.actions("upload") == {}  # same size and mtime: the mtime rule cannot tell
    assert checksum.code == 0, checksum.err
    assert checksum.actions("upload") == {"js/app.js": "content"}
    body = s3.get_object(Bucket=bucket, Key="js/app.js")["Body"].read()
    assert gzip.decompress(body) == SITE["js/app.js"].replace(b"42", b"43")


@pytest.mark.parametrize("with_index", [False, True])
def test_switching_gzip_on_and_off_sends_every_affected_file_in_its_new_encoding(
    with_index: bool, cli: Any, s3: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(SITE)
    index = ("--index", tmp_path / "site.idx") if with_index else ()
    conf = tmp_path / "site.toml"
    conf.write_text('[[rules]]\nmatch = "blog/"\ngzip = false\n')

    def push(*args: str) -> Run:
        run: Run = cli("push", "--json", "--config", conf, *index, *args, src, f"s3://{bucket}")
        return run

    assert push().code == 0
    on = push("--gzip")
    assert on.code == 0, on.err
    assert on.actions("upload") == {k: "encoding" for k in TEXT if not k.startswith("blog/")}
    assert encodings(s3, bucket) == {
        k: ("gzip" if k in TEXT and not k.startswith("blog/") else None) for k in SITE
    }
    off = push()
    assert off.code == 0, off.err
    assert set(off.actions("upload")) == {k for k in TEXT if not k.startswith("blog/")}
    assert set(encodings(s3, bucket).values()) == {None}
    assert push().actions("upload") == {}


def test_restore_gives_back_the_files_not_the_compressed_bytes_and_then_has_nothing_to_do(
    cli: Any, s3: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(SITE)
    assert cli("push", "--gzip", src, f"s3://{bucket}").code == 0
    dest = tmp_path / "restored"

    first = cli("restore", "--endpoint-url", server.endpoint, "--json", f"s3://{bucket}", dest)
    second = cli("restore", "--endpoint-url", server.endpoint, "--json", f"s3://{bucket}", dest)
    checksum = cli(
        "restore",
        "--endpoint-url",
        server.endpoint,
        "--json",
        "--compare",
        "checksum",
        f"s3://{bucket}",
        dest,
    )

    assert first.code == 0, first.err
    for key, body in SITE.items():
        assert (dest / key).read_bytes() == body, key
        assert (dest / key).stat().st_mtime == pytest.approx(os.stat(src / key).st_mtime)
    assert second.code == 0 and second.summary()["downloaded"] == 0, second.out
    assert checksum.code == 0 and checksum.summary()["downloaded"] == 0, checksum.out
    (dest / "index.html").write_bytes(b"damaged")
    os.utime(dest / "index.html", (0, os.stat(src / "index.html").st_mtime))
    mended = cli("restore", "--endpoint-url", server.endpoint, "--json", f"s3://{bucket}", dest)
    assert mended.actions("download") == {"index.html": "size"}
    assert (dest / "index.html").read_bytes() == PAGE


def test_a_corrupt_compressed_object_is_an_error_and_leaves_the_file_alone(
    cli: Any, s3: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree({"a.css": "a{}" * 100})
    assert cli("push", "--gzip", src, f"s3://{bucket}").code == 0
    s3.put_object(  # what a broken tool might leave: gzip headers over bytes that are not
        Bucket=bucket,
        Key="a.css",
        Body=b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03garbage",
        ContentEncoding="gzip",
        Metadata={"s3sync-gzip": "300"},
    )
    dest = tmp_path / "restored"
    dest.mkdir()
    (dest / "a.css").write_bytes(b"mine")
    os.utime(dest / "a.css", (0, 0 + DAY))

    run = cli("restore", "--endpoint-url", server.endpoint, f"s3://{bucket}", dest)

    assert run.code == 1
    assert "a.css" in run.err and "gzip data is corrupt" in run.err
    assert (dest / "a.css").read_bytes() == b"mine"
    assert [p.name for p in dest.iterdir()] == ["a.css"]  # no temporary file left
