"""s3sync push against a real SeaweedFS: what lands in the bucket, and why."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tree, write_tree
from tests.integration.conftest import keys, objects

pytestmark = pytest.mark.integration


def site(n: int = 200) -> dict[str, bytes | str]:
    """Return a nested website-like tree of *n* files with varied sizes."""
    rng = random.Random(n)
    files: dict[str, bytes | str] = {"index.html": "<html>home</html>"}
    for i in range(n - 1):
        folder = f"section{i % 7}/part{i % 3}"
        files[f"{folder}/page{i}.html"] = rng.randbytes(rng.randint(0, 5000))
    return files


def test_first_push_uploads_every_file_with_its_mtime(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    files = site(120)
    src = tree(files, mtime=1_600_000_000.25)
    os.utime(src / "index.html", ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))

    run = cli("push", "--json", src, f"s3://{bucket}/www")

    assert run.code == 0, run.err
    assert run.err == ""
    stored = objects(s3, bucket)
    assert stored == {
        f"www/{rel}": (c.encode() if isinstance(c, str) else c) for rel, c in files.items()
    }
    assert set(run.actions("upload").values()) == {"new"}
    head = s3.head_object(Bucket=bucket, Key="www/index.html")
    assert head["Metadata"]["mtime"] == "1700000000.123456789"
    assert head["ContentType"] == "text/html; charset=utf-8"
    assert head["ContentLength"] == len(files["index.html"])
    other = s3.head_object(Bucket=bucket, Key="www/section0/part0/page0.html")
    assert other["Metadata"]["mtime"] == "1600000000.25"
    summary = run.summary()
    assert summary["uploaded"] == 120 and summary["deleted"] == 0 and summary["failed"] == 0
    assert summary["uploaded_bytes"] == sum(len(c) for c in files.values())


def test_second_push_does_nothing(cli: Any, bucket: str, tree: Tree) -> None:
    src = tree(site(60))
    assert cli("push", src, f"s3://{bucket}").code == 0

    again = cli("push", "--json", src, f"s3://{bucket}")

    assert again.code == 0
    assert again.actions("upload") == {} and again.actions("delete") == {}
    assert again.summary()["unchanged"] == 60


def test_one_percent_changed_deleted_added_gives_exactly_those_actions(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    files = site(300)
    src = tree(files)
    assert cli("push", src, f"s3://{bucket}/p/").code == 0
    names = sorted(files)
    changed_size = names[10:13]
    changed_bytes = [n for n in names[20:30] if files[n]][:3]
    touched, deleted, added = names[40:43], names[30:33], ["new/a.html", "new/b.html", "c.html"]
    for rel in changed_size:
        (src / rel).write_bytes(b"grown " * 2000)
    for rel in changed_bytes:  # same size, new bytes, new mtime: the bytes tell
        (src / rel).write_bytes(bytes(255 - b for b in (src / rel).read_bytes()))
    for rel in touched:  # new mtime only: the same bytes need no upload
        os.utime(src / rel, (time.time(), time.time()))
    for rel in deleted:
        (src / rel).unlink()
    write_tree(src, {rel: f"new {rel}" for rel in added}, mtime=time.time())

    run = cli("push", "--json", src, f"s3://{bucket}/p")

    assert run.code == 0, run.err
    expected = {f"p/{r}": "size" for r in changed_size}
    expected |= {f"p/{r}": "content" for r in changed_bytes}
    expected |= {f"p/{r}": "new" for r in added}
    assert run.actions("upload") == expected
    assert run.actions("delete") == {f"p/{r}": "gone" for r in deleted}
    assert keys(s3, bucket) == {f"p/{r}" for r in set(files) - set(deleted) | set(added)}
    assert s3.get_object(Bucket=bucket, Key=f"p/{changed_size[0]}")["Body"].read() == (
        b"grown " * 2000
    )


def test_no_delete_keeps_objects_without_a_local_file(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    s3.put_object(Bucket=bucket, Key="old.html", Body=b"old")
    src = tree({"a.html": "a"})

    run = cli("push", "-D", "--json", src, f"s3://{bucket}")

    assert run.code == 0
    assert keys(s3, bucket) == {"old.html", "a.html"}
    assert run.summary()["deleted"] == 0


def test_dry_run_changes_nothing_and_says_what_it_would_do(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    s3.put_object(Bucket=bucket, Key="old.html", Body=b"old")
    src = tree({"a.html": "a", "b/c.css": "c"})

    run = cli("push", "-n", "-v", src, f"s3://{bucket}")
    as_json = cli("push", "-n", "--json", src, f"s3://{bucket}")

    assert run.code == 0 and as_json.code == 0
    assert keys(s3, bucket) == {"old.html"}
    assert "would upload a.html [new]" in run.out
    assert "would delete old.html [gone]" in run.out
    assert {r["status"] for r in as_json.json_lines() if r["type"] != "summary"} == {"dry-run"}
    assert as_json.summary()["dry_run"] is True


def test_include_exclude_first_match_wins_and_excluded_keys_survive(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree(
        {
            "index.html": "i",
            "keep/important.tmp": "kept by the include",
            "scratch.tmp": "excluded",
            "cache/big.bin": "excluded dir",
            "sub/cache/x": "excluded dir at any depth",
            "sub/page.html": "p",
        }
    )
    os.chmod(src / "cache", 0o000)  # never descended, so never an error
    for key in ("scratch.tmp", "cache/old.bin", "sub/cache/old", "gone.html"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"remote")

    run = cli(
        "push",
        "--json",
        "--include",
        "keep/*.tmp",
        "--exclude",
        "*.tmp",
        "--exclude",
        "cache/",
        src,
        f"s3://{bucket}",
    )
    os.chmod(src / "cache", 0o755)

    assert run.code == 0, run.err
    assert set(run.actions("upload")) == {"index.html", "keep/important.tmp", "sub/page.html"}
    assert run.actions("delete") == {"gone.html": "gone"}
    assert keys(s3, bucket) == {
        "index.html",
        "keep/important.tmp",
        "sub/page.html",
        "scratch.tmp",
        "cache/old.bin",
        "sub/cache/old",
    }
    assert s3.get_object(Bucket=bucket, Key="scratch.tmp")["Body"].read() == b"remote"


def test_anchored_pattern_only_matches_at_the_root(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree({"build/a.js": "a", "docs/build/b.js": "b"})

    run = cli("push", "--exclude", "/build/", src, f"s3://{bucket}")

    assert run.code == 0
    assert keys(s3, bucket) == {"docs/build/b.js"}


@pytest.mark.parametrize(
    "name",
    [
        "café/naïve résumé.html",
        "with space.txt",
        "a+b.txt",
        "100%.txt",
        "hash#tag.txt",
        "what?.txt",
        "日本語/ファイル.txt",
        "emoji-🎉.txt",
        "semi;colon&amp=.txt",
        "~tilde'quote\".txt",
    ],
)
def test_unusual_names_round_trip(cli: Any, s3: Any, bucket: str, tree: Tree, name: str) -> None:
    src = tree({name: f"content of {name}", "empty.txt": b""})

    first = cli("push", src, f"s3://{bucket}/x")
    second = cli("push", "--json", src, f"s3://{bucket}/x")

    assert first.code == 0, first.err
    assert objects(s3, bucket) == {f"x/{name}": f"content of {name}".encode(), "x/empty.txt": b""}
    assert second.actions("upload") == {} and second.actions("delete") == {}


def test_large_file_goes_up_as_parallel_multipart_and_leaves_no_parts(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    data = random.Random(7).randbytes(21 * 1024 * 1024 + 12345)
    src = tree({"big/video.mp4": data})

    run = cli("push", "--part-size", "5MiB", src, f"s3://{bucket}")

    assert run.code == 0, run.err
    head = s3.head_object(Bucket=bucket, Key="big/video.mp4")
    assert head["ETag"].strip('"').endswith("-5")  # 4 full parts of 5 MiB and a short one
    assert head["ContentType"] == "video/mp4"
    assert s3.get_object(Bucket=bucket, Key="big/video.mp4")["Body"].read() == data
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_symlinks_followed_broken_links_and_fifos_warned_not_fatal(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree({"real/page.html": "real", "other.txt": "o"})
    os.symlink("real", src / "alias")
    os.symlink("missing-target", src / "broken.html")
    os.symlink("..", src / "real" / "loop")
    os.mkfifo(src / "pipe")
    s3.put_object(Bucket=bucket, Key="broken.html", Body=b"published before the link broke")

    run = cli("push", "-v", "--json", src, f"s3://{bucket}")

    assert run.code == 0, run.err
    assert keys(s3, bucket) == {"real/page.html", "alias/page.html", "other.txt", "broken.html"}
    warnings = {r["path"]: r["message"] for r in run.json_lines() if r["type"] == "warning"}
    assert set(warnings) == {"broken.html", "pipe", "real/loop", "alias/loop"}
    assert "broken symlink" in warnings["broken.html"]
    assert "symlink loop" in warnings["real/loop"]
    assert "FIFO" in warnings["pipe"]
    assert run.summary()["warnings"] == 4


def test_no_follow_symlinks_skips_links(cli: Any, s3: Any, bucket: str, tree: Tree) -> None:
    src = tree({"real/page.html": "real"})
    os.symlink("real", src / "alias")

    run = cli("push", "--no-follow-symlinks", src, f"s3://{bucket}")

    assert run.code == 0
    assert keys(s3, bucket) == {"real/page.html"}


def test_cron_output_is_one_summary_line(cli: Any, bucket: str, tree: Tree) -> None:
    src = tree({"a.html": "a"})

    run = cli("push", src, f"s3://{bucket}")
    quiet = cli("push", "-q", src, f"s3://{bucket}")

    assert run.code == 0 and run.err == ""
    assert run.out.startswith("s3sync push: 1 uploaded (1 B), 0 deleted, 0 unchanged, 0 failed")
    assert len(run.out.splitlines()) == 1
    assert quiet.out == "" and quiet.err == ""


def test_python_api_matches_the_cli(
    server: Any, s3: Any, bucket: str, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s3sync

    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    src = tree({"a.html": "a", "b/c.css": "c"})
    s3.put_object(Bucket=bucket, Key="site/old", Body=b"x")
    seen: list[s3sync.Outcome] = []

    report = s3sync.push(
        str(src), f"s3://{bucket}/site", endpoint_url=server.endpoint, progress=seen.append
    )

    assert report.exit_code == s3sync.ExitCode.OK
    assert (report.uploaded, report.deleted, report.failed) == (2, 1, 0)
    assert {(o.action.key, o.action.reason) for o in report.outcomes} == {
        ("site/a.html", s3sync.Reason.NEW),
        ("site/b/c.css", s3sync.Reason.NEW),
        ("site/old", s3sync.Reason.GONE),
    }
    assert len(seen) == 3
    assert keys(s3, bucket) == {"site/a.html", "site/b/c.css"}


def test_keys_no_local_path_can_hold_are_left_alone(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    # SeaweedFS refuses keys with "." or ".." segments; unit tests cover those.
    for key in ("dir/", "deep/dir/"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"odd")
    before = keys(s3, bucket)
    src = tree({"a.txt": "a"})

    run = cli("push", src, f"s3://{bucket}")

    assert run.code == 0
    assert keys(s3, bucket) == before | {"a.txt"}


def test_config_file_gives_defaults_and_flags_win(
    cli: Any, s3: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree({"a.html": "a", "b.tmp": "b"})
    s3.put_object(Bucket=bucket, Key="old.html", Body=b"old")
    conf = tmp_path / "s3sync.toml"
    conf.write_text('exclude = ["*.tmp"]\n\n[push]\nno-delete = true\n')

    kept = cli("push", "--config", conf, src, f"s3://{bucket}")
    flags_win = cli("push", "--config", conf, "--exclude", "nothing", src, f"s3://{bucket}")

    assert kept.code == 0 and flags_win.code == 0
    assert keys(s3, bucket) == {"a.html", "b.tmp", "old.html"}
