"""Publishing a website: the right Content-Type for every object, and pages only after
the assets they use."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.conftest import Tree
from tests.integration.conftest import Run
from tests.integration.proxy import INTERNAL, Fault, Seen, fault_proxy

UTF8 = "; charset=utf-8"
# the list of extensions, and what each must be served as
SITE_TYPES = {
    "index.html": "text/html" + UTF8,
    "old.htm": "text/html" + UTF8,
    "style.css": "text/css" + UTF8,
    "app.js": "text/javascript" + UTF8,
    "module.mjs": "text/javascript" + UTF8,
    "data.json": "application/json" + UTF8,
    "app.js.map": "application/json" + UTF8,
    "feed.xml": "application/xml" + UTF8,
    "robots.txt": "text/plain" + UTF8,
    "README.md": "text/markdown" + UTF8,
    "table.csv": "text/csv" + UTF8,
    "logo.svg": "image/svg+xml" + UTF8,
    "favicon.ico": "image/vnd.microsoft.icon",
    "a.png": "image/png",
    "b.jpg": "image/jpeg",
    "c.jpeg": "image/jpeg",
    "d.gif": "image/gif",
    "e.webp": "image/webp",
    "f.avif": "image/avif",
    "font.woff": "font/woff",
    "font.woff2": "font/woff2",
    "font.ttf": "font/ttf",
    "font.otf": "font/otf",
    "font.eot": "application/vnd.ms-fontobject",
    "code.wasm": "application/wasm",
    "paper.pdf": "application/pdf",
    "archive.zip": "application/zip",
    "archive.gz": "application/gzip",
    "song.mp3": "audio/mpeg",
    "clip.mp4": "video/mp4",
    "clip.webm": "video/webm",
    "sound.ogg": "audio/ogg",
    "site.webmanifest": "application/manifest+json" + UTF8,
    "feed.rss": "application/rss+xml" + UTF8,
    "feed.atom": "application/atom+xml" + UTF8,
    "UPPER.HTML": "text/html" + UTF8,  # the table ignores case
    "LICENSE": "text/plain" + UTF8,  # no extension: libmagic reads the first bytes
    "photo": "image/png",
    "blob.unknownext": "application/octet-stream",
}
CONTENT: dict[str, bytes] = {
    "LICENSE": b"Permission is hereby granted, free of charge, to any person.\n",
    "photo": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
    b"\x00\x00\x00\x1f\x15\xc4\x89",
    "blob.unknownext": b"\x00\xff" * 512,
}


def stored_types(s3: Any, bucket: str) -> dict[str, str]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.head_object(Bucket=bucket, Key=o["Key"])["ContentType"] for o in listed}


def test_every_extension_of_a_sample_site_gets_its_content_type(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree({name: CONTENT.get(name, f"content of {name}") for name in SITE_TYPES})

    run = cli("push", src, f"s3://{bucket}")

    assert run.code == 0, run.err
    assert stored_types(s3, bucket) == SITE_TYPES


def test_content_type_flag_gives_every_file_one_type(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree({"page": "<p>no extension</p>", "data.json": "{}"})

    run = cli("push", "--content-type", "text/html; charset=utf-8", src, f"s3://{bucket}")

    assert run.code == 0, run.err
    assert stored_types(s3, bucket) == {
        "page": "text/html; charset=utf-8",
        "data.json": "text/html; charset=utf-8",
    }


ASSETS = ["style.css", "app.js", "img/a.png", "img/b.png", "fonts/f.woff2", "data.json"]
ENTRIES = [
    "index.html",
    "blog/post.html",
    "blog/old.htm",
    "sitemap.xml",
    "feed.xml",
    "feed.rss",
    "sw.js",
    "site.webmanifest",
]


def puts_in_order(seen: list[Seen], bucket: str) -> list[str]:
    return [
        unquote(s.path.split("?")[0].removeprefix(f"/{bucket}/")) for s in seen if s.method == "PUT"
    ]


def test_assets_go_up_before_any_page_and_deletes_come_last(
    cli: Any, s3: Any, server: Any, bucket: str, tree: Tree
) -> None:
    src = tree({name: f"content of {name}" for name in ASSETS + ENTRIES})
    s3.put_object(Bucket=bucket, Key="gone.html", Body=b"old page")

    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        run = cli("push", "-w", "8", src, f"s3://{bucket}", endpoint=proxy.endpoint)
        seen = list(proxy.seen)

    assert run.code == 0, run.err
    puts = puts_in_order(seen, bucket)
    assert sorted(puts) == sorted(ASSETS + ENTRIES)
    assert set(puts[: len(ASSETS)]) == set(ASSETS)  # every asset before any page
    last_put = max(i for i, s in enumerate(seen) if s.method == "PUT")
    deletes = [i for i, s in enumerate(seen) if s.method == "POST" and "delete" in s.path]
    assert deletes and min(deletes) > last_put


def test_order_option_makes_groups_in_the_order_given(
    cli: Any, s3: Any, server: Any, bucket: str, tree: Tree
) -> None:
    src = tree({name: f"content of {name}" for name in [*ASSETS, "index.html"]})

    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        run = cli(
            "push",
            "-w",
            "8",
            "--order",
            "*.css,*.json",
            "--order",
            "*.png",
            src,
            f"s3://{bucket}",
            endpoint=proxy.endpoint,
        )
        puts = puts_in_order(list(proxy.seen), bucket)

    assert run.code == 0, run.err
    # group 0 (matches no --order: the page too), then css and json, then the images
    assert set(puts[:3]) == {"app.js", "fonts/f.woff2", "index.html"}
    assert set(puts[3:5]) == {"style.css", "data.json"}
    assert set(puts[5:]) == {"img/a.png", "img/b.png"}


def test_a_failed_asset_keeps_every_page_back(
    cli: Any, s3: Any, server: Any, bucket: str, tree: Tree
) -> None:
    src = tree({name: f"content of {name}" for name in ASSETS + ENTRIES})

    def broken_css(method: str, path: str, _n: int) -> Fault | None:
        return INTERNAL if method == "PUT" and "style.css" in path else None

    with fault_proxy(server.endpoint, broken_css) as proxy:
        run = cli(
            "push", "--json", "--retries", "0", src, f"s3://{bucket}", endpoint=proxy.endpoint
        )
        puts = puts_in_order(list(proxy.seen), bucket)

    assert run.code == 1
    assert not set(puts) & set(ENTRIES)  # no page went up
    failed = {r["path"]: r["error"] for r in run.json_lines() if r.get("status") == "failed"}
    assert set(failed) == {"style.css", *ENTRIES}
    assert all("earlier --order group failed" in failed[e] for e in ENTRIES)

    rerun = cli("push", "--json", src, f"s3://{bucket}")
    assert rerun.code == 0 and set(rerun.actions("upload")) == {"style.css", *ENTRIES}


RULES = """
header = ["Cache-Control: max-age=5", "x-amz-meta-owner: ops"]

[[rules]]
match = "*.html"
cache-control = "max-age=60"
content-language = "en"

[[rules]]
match = "assets/"
cache-control = "max-age=31536000, immutable"
metadata = { team = "web" }

[[rules]]
match = "old.html"  # *.html matched first: never used
cache-control = "no-store"

[[rules]]
match = "/go"
website-redirect-location = "/new/"
content-disposition = "attachment"
content-type = "text/plain"
expires = "Thu, 01 Dec 2033 16:00:00 GMT"
"""


def described(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    head = s3.head_object(Bucket=bucket, Key=key)
    found = {
        name: head[name]
        for name in (
            "CacheControl",
            "ContentLanguage",
            "ContentDisposition",
            "ContentType",
            "WebsiteRedirectLocation",
        )
        if head.get(name)
    }
    if head.get("Expires"):
        found["Expires"] = head["Expires"].strftime("%Y-%m-%d")
    found["Metadata"] = {
        k: v for k, v in head["Metadata"].items() if k not in ("mtime", "s3sync-headers")
    }
    return found


def test_header_rules_and_header_flags_apply_per_path_first_match_wins(
    cli: Any, s3: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree(
        {"index.html": "i", "old.html": "o", "assets/app.css": "c", "go": "g", "img.png": "p"}
    )
    conf = tmp_path / "site.toml"
    conf.write_text(RULES)

    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        run = cli("push", "--config", conf, src, f"s3://{bucket}", endpoint=proxy.endpoint)
        sent = {s.path.split("?")[0]: dict(s.headers) for s in proxy.seen if s.method == "PUT"}

    assert run.code == 0, run.err
    # the real header; SeaweedFS does not keep it, so the request is what is checked
    assert sent[f"/{bucket}/go"].get("x-amz-website-redirect-location") == "/new/", sent[
        f"/{bucket}/go"
    ]
    assert "x-amz-acl" not in sent[f"/{bucket}/go"]  # no ACL unless asked
    page = {
        "CacheControl": "max-age=60",
        "ContentLanguage": "en",
        "ContentType": "text/html; charset=utf-8",
        "Metadata": {"owner": "ops"},
    }
    assert described(s3, bucket, "index.html") == page
    assert described(s3, bucket, "old.html") == page
    assert described(s3, bucket, "assets/app.css") == {
        "CacheControl": "max-age=31536000, immutable",
        "ContentType": "text/css; charset=utf-8",
        "Metadata": {"owner": "ops", "team": "web"},
    }
    assert described(s3, bucket, "go") == {
        "CacheControl": "max-age=5",
        "ContentDisposition": "attachment",
        "ContentType": "text/plain",
        "Expires": "2033-12-01",
        "Metadata": {"owner": "ops"},
    }
    assert described(s3, bucket, "img.png") == {
        "CacheControl": "max-age=5",
        "ContentType": "image/png",
        "Metadata": {"owner": "ops"},
    }


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ('[[rules]]\nmatch = "*.html"\ncache-kontrol = "x"\n', (), "line 1: unknown key"),
        ('workers = 4\n\n[[rules]]\ncache-control = "x"\n', (), "line 3: a [[rules]] table needs"),
        ('[[rules]]\nmatch = "[oops"\n', (), "line 1: match: filter pattern"),
        ("", ("--header", "Strict-Transport-Security: max-age=1"), "S3 does not keep"),
        ("", ("--header", "no colon"), 'write it as "Name: value"'),
    ],
)
def test_bad_rules_and_headers_are_usage_errors_naming_where(
    cli: Any,
    bucket: str,
    tree: Tree,
    tmp_path: Path,
    text: str,
    args: tuple[str, ...],
    message: str,
) -> None:
    conf = tmp_path / "site.toml"
    conf.write_text(text)
    src = tree({"a.html": "a"})

    run = cli("push", "--config", conf, *args, src, f"s3://{bucket}")

    assert run.code == 2
    assert message in run.err and run.err.count("\n") == 1, run.err


def rules(html_cache: str) -> str:
    return (
        f'[[rules]]\nmatch = "*.html"\ncache-control = "{html_cache}"\n\n'
        '[[rules]]\nmatch = "*.css"\ncache-control = "max-age=31536000"\n'
    )


@pytest.mark.parametrize("with_index", [True, False])
def test_an_edited_rule_fixes_headers_in_place_without_uploading_again(
    with_index: bool, cli: Any, s3: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree({"index.html": "<p>home</p>", "blog/post.html": "<p>post</p>", "a.css": "b{}"})
    conf = tmp_path / "site.toml"
    index = ("--index", tmp_path / "site.idx") if with_index else ()
    conf.write_text(rules("max-age=60"))
    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:  # one port: the
        # index is bound to the endpoint it was made for
        def push(*args: str | Path) -> tuple[Run, list[Seen]]:
            start = len(proxy.seen)
            run = cli(
                "push",
                "--json",
                "--config",
                conf,
                *index,
                *args,
                src,
                f"s3://{bucket}",
                endpoint=proxy.endpoint,
            )
            return run, proxy.seen[start:]

        assert push()[0].code == 0
        conf.write_text(rules("max-age=120"))
        dry, _ = push("-n")
        assert dry.actions("upload") == {"index.html": "headers", "blog/post.html": "headers"}
        assert s3.head_object(Bucket=bucket, Key="index.html")["CacheControl"] == "max-age=60"
        fixed, seen = push()
        writes = [s for s in seen if s.method in ("PUT", "POST")]
        again, seen_again = push()
        requests = [s.method for s in seen_again]

    assert fixed.code == 0, fixed.err
    assert fixed.actions("upload") == {"index.html": "headers", "blog/post.html": "headers"}
    assert (fixed.summary()["headers_fixed"], fixed.summary()["uploaded"]) == (2, 0)
    # only CopyObject onto themselves: no PutObject carries the bytes again
    assert sorted(unquote(s.path.split("?")[0]) for s in writes) == [
        f"/{bucket}/blog/post.html",
        f"/{bucket}/index.html",
    ]
    assert all(dict(s.headers).get("x-amz-copy-source") for s in writes)
    for key, body in (("index.html", b"<p>home</p>"), ("blog/post.html", b"<p>post</p>")):
        got = s3.get_object(Bucket=bucket, Key=key)
        assert (got["CacheControl"], got["Body"].read()) == ("max-age=120", body)
        assert got["ContentType"] == "text/html; charset=utf-8" and "mtime" in got["Metadata"]
    assert s3.head_object(Bucket=bucket, Key="a.css")["CacheControl"] == "max-age=31536000"
    assert again.code == 0 and again.summary()["headers_fixed"] == 0
    assert again.actions("upload") == {}
    if with_index:  # the index knows every object's headers: not one request
        assert requests == []
