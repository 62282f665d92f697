"""push -g: listing pages for directories without index.html, through their whole life."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tree
from tests.integration.conftest import Run, keys
from tests.integration.proxy import Seen, fault_proxy
from tests.integration.test_website import puts_in_order

SITE = {
    "index.html": "<p>home</p>",
    "style.css": "body{}",
    "docs/guide.txt": "read me",
    "docs/<odd> & name.txt": "odd",
    "docs/.secret": "hidden",
    "docs/sub/b.txt": "bb",
    "docs/sub/deeper/c.txt": "ccc",
    "blog/index.html": "<p>blog</p>",
    "blog/2024/post.txt": "post",
    ".well-known/security.txt": "contact",
}
PAGES = [
    "blog/2024/index.html",
    "docs/index.html",
    "docs/sub/deeper/index.html",
    "docs/sub/index.html",
]


def page(s3: Any, bucket: str, key: str) -> tuple[str, dict[str, Any]]:
    got = s3.get_object(Bucket=bucket, Key=key)
    body = got.pop("Body").read()
    if got.get("ContentEncoding") == "gzip":
        body = gzip.decompress(body)
    return body.decode(), got


def generated(s3: Any, bucket: str) -> list[str]:
    return sorted(
        k
        for k in keys(s3, bucket)
        if s3.head_object(Bucket=bucket, Key=k)["Metadata"].get("generated") == "true"
    )


def test_pages_list_each_directory_escaped_and_go_up_after_the_assets(
    cli: Any, s3: Any, server: Any, bucket: str, tree: Tree
) -> None:
    src = tree(SITE)

    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        run = cli("push", "--json", "-g", "-w", "4", src, f"s3://{bucket}", endpoint=proxy.endpoint)
        seen = list(proxy.seen)

    assert run.code == 0, run.err
    assert generated(s3, bucket) == PAGES  # not the root, nor a directory with index.html,
    # nor a hidden one
    assert {k: run.actions("upload")[k] for k in PAGES} == dict.fromkeys(PAGES, "new")
    text, info = page(s3, bucket, "docs/index.html")
    assert info["ContentType"] == "text/html; charset=utf-8"
    links = [line for line in text.splitlines() if "<a href" in line]
    assert [line.split('"')[1] for line in links] == [
        "../",
        "sub/",
        "%3Codd%3E%20%26%20name.txt",
        "guide.txt",
    ]
    assert ">&lt;odd&gt; &amp; name.txt</a>" in text and ".secret" not in text
    assert "<td>7</td>" in text  # guide.txt's size
    assert s3.get_object(Bucket=bucket, Key="blog/index.html")["Body"].read() == b"<p>blog</p>"
    order = puts_in_order(seen, bucket)
    last_asset = max(order.index(k) for k in order if not k.endswith(".html"))
    assert all(order.index(p) > last_asset for p in PAGES)


@pytest.mark.parametrize("with_index", [False, True])
def test_pages_follow_their_directories_and_a_real_index_html_replaces_one(
    with_index: bool, cli: Any, s3: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(SITE)
    index = ("--index", tmp_path / "site.idx") if with_index else ()
    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:

        def push(*args: str) -> tuple[Run, list[Seen]]:
            start = len(proxy.seen)
            run = cli(
                "push", "--json", *index, *args, src, f"s3://{bucket}", endpoint=proxy.endpoint
            )
            assert run.code == 0, run.err
            return run, proxy.seen[start:]

        push("-g")
        again, seen = push("-g")
        assert again.summary()["uploaded"] == 0 and puts_in_order(seen, bucket) == []

        tree({"docs/new.txt": "new"})
        added, _ = push("-g")
        assert added.actions("upload") == {"docs/new.txt": "new", "docs/index.html": "content"}
        assert "new.txt" in page(s3, bucket, "docs/index.html")[0]

        shutil.rmtree(src / "docs/sub")
        removed, _ = push("-g")
        assert removed.actions("delete") == {
            "docs/sub/b.txt": "gone",
            "docs/sub/deeper/c.txt": "gone",
            "docs/sub/index.html": "gone",
            "docs/sub/deeper/index.html": "gone",
        }
        assert removed.actions("upload") == {"docs/index.html": "content"}
        assert 'href="sub/"' not in page(s3, bucket, "docs/index.html")[0]

        tree({"docs/index.html": "<p>my own docs page</p>"})
        real, _ = push("-g")
        assert set(real.actions("upload")) == {"docs/index.html"}
        assert page(s3, bucket, "docs/index.html")[0] == "<p>my own docs page</p>"

        dropped, _ = push()
        assert dropped.actions("delete") == {"blog/2024/index.html": "gone"}

    assert generated(s3, bucket) == []
    assert "docs/index.html" in keys(s3, bucket)


def test_pages_take_the_header_rules_and_gzip_of_html_and_restore_skips_them(
    cli: Any, s3: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(SITE)
    conf = tmp_path / "site.toml"
    conf.write_text('[[rules]]\nmatch = "*.html"\ncache-control = "max-age=60"\n')

    first = cli("push", "--json", "-g", "--gzip", "--config", conf, src, f"s3://{bucket}")
    conf.write_text('[[rules]]\nmatch = "*.html"\ncache-control = "max-age=90"\n')
    edited = cli("push", "--json", "-g", "--gzip", "--config", conf, src, f"s3://{bucket}")
    dest = tmp_path / "restored"
    restored = cli("restore", "--endpoint-url", server.endpoint, f"s3://{bucket}", dest)

    assert first.code == 0, first.err
    assert edited.code == 0, edited.err
    text, info = page(s3, bucket, "docs/index.html")
    assert (info["CacheControl"], info["ContentEncoding"]) == ("max-age=90", "gzip")
    assert "guide.txt" in text
    assert {k for k, r in edited.actions("upload").items() if r == "content"} == set(PAGES)
    assert restored.code == 0, restored.err
    on_disk = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert on_disk == sorted(SITE)  # the generated pages are not files of the site
