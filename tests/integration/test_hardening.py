"""What an adversarial review found: answers no real server gives, odd targets, bad input."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tree, write_tree
from tests.integration.conftest import cli_env, keys
from tests.integration.proxy import Hold, fault_proxy

pytestmark = pytest.mark.integration

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def truncated_page(bucket: str, prefix: str, names: list[str]) -> bytes:
    """A first listing page that says more follow, with no token to ask for them."""
    entries = "".join(
        f"<Contents><Key>{prefix}{name}</Key><LastModified>2026-01-01T00:00:00.000Z"
        f"</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag>"
        f"<Size>1</Size></Contents>"
        for name in names
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{NS}">'
        f"<Name>{bucket}</Name><Prefix>{prefix}</Prefix><KeyCount>{len(names)}</KeyCount>"
        f"<MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>{entries}</ListBucketResult>"
    ).encode()


def listing_cut_short(bucket: str, prefix: str, names: list[str]) -> Any:
    """A proxy rule: every listing answers the truncated page without a token."""
    body = truncated_page(bucket, prefix, names)

    def rule(method: str, path: str, _n: int) -> tuple[int, bytes] | None:
        return (200, body) if method == "GET" and "list-type=2" in path else None

    return rule


@pytest.mark.parametrize("command", ["restore", "copy", "push"])
def test_a_listing_cut_short_without_a_token_deletes_nothing(
    cli: Any, server: Any, s3: Any, bucket: str, tree: Tree, tmp_path: Path, command: str
) -> None:
    names = [f"f{i:02}.txt" for i in range(30)]
    for name in names:
        s3.put_object(Bucket=bucket, Key=f"src/{name}", Body=b"x")
        s3.put_object(Bucket=bucket, Key=f"dst/{name}", Body=b"x")
    dest = write_tree(tmp_path / "dest", dict.fromkeys(names, "x"))
    src = tree(dict.fromkeys(names[:10], "x"))  # push: 20 objects have no file
    shown = names[:10]  # the only keys the cut listing shows
    prefix = "dst/" if command == "push" else "src/"

    with fault_proxy(server.endpoint, listing_cut_short(bucket, prefix, shown)) as proxy:
        endpoint = ("--endpoint-url", proxy.endpoint)
        if command == "restore":
            run = cli("restore", "--delete", "--json", f"s3://{bucket}/src", dest, *endpoint)
        elif command == "copy":
            run = cli(
                "copy", "--delete", "--json", f"s3://{bucket}/src", f"s3://{bucket}/dst", *endpoint
            )
        else:
            run = cli("push", "--json", src, f"s3://{bucket}/dst", endpoint=proxy.endpoint)

    assert run.code == 3, (run.code, run.err)
    assert "incomplete" in run.err and "no continuation token" in run.err
    assert sorted(p.name for p in dest.iterdir()) == names
    assert keys(s3, bucket, "dst/") == {f"dst/{name}" for name in names}
    assert keys(s3, bucket, "src/") == {f"src/{name}" for name in names}


def test_a_lock_path_that_is_a_symlink_is_a_usage_error_and_its_target_untouched(
    cli: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree({"a.txt": "a"})
    precious = tmp_path / "precious.txt"
    precious.write_text("do not truncate")
    (tmp_path / "site.lock").symlink_to(precious)

    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        run = cli(
            "push", "--lock", tmp_path / "site.lock", src, f"s3://{bucket}", endpoint=proxy.endpoint
        )
        sent = len(proxy.seen)

    assert run.code == 2 and "is a symlink" in run.err and len(run.err.splitlines()) == 1
    assert precious.read_text() == "do not truncate"
    assert sent == 0


@pytest.mark.parametrize("place", ["a-directory", "missing-dir/i.db"])
def test_an_index_that_cannot_be_kept_is_a_usage_error_before_anything_is_sent(
    cli: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path, place: str
) -> None:
    src = tree({"a.txt": "a"})
    (tmp_path / "a-directory").mkdir()

    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        run = cli(
            "push", "--index", tmp_path / place, src, f"s3://{bucket}", endpoint=proxy.endpoint
        )
        sent = len(proxy.seen)

    assert run.code == 2, run.err
    assert "index" in run.err and len(run.err.splitlines()) == 1
    assert sent == 0


def test_an_index_knows_its_endpoint_with_or_without_a_trailing_slash(
    cli: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree({"a.txt": "a"})
    index = tmp_path / "i.db"
    first = cli("push", "--index", index, src, f"s3://{bucket}", endpoint=server.endpoint + "/")
    again = cli("push", "--json", "--index", index, src, f"s3://{bucket}", endpoint=server.endpoint)

    assert first.code == 0, first.err
    assert again.code == 0, again.err
    assert again.summary()["remote"] == "index"


def test_a_password_in_the_endpoint_is_never_echoed(
    cli: Any, server: Any, tree: Tree, tmp_path: Path
) -> None:
    src = tree({"a.txt": "a"})
    log = tmp_path / "run.log"
    with_password = server.endpoint.replace("http://", "http://alice:hunter2secret@")

    run = cli("push", "--log-file", log, src, "s3://no-such-bucket-here", endpoint=with_password)

    assert run.code == 3
    assert "hunter2secret" not in run.err + run.out + log.read_text()
    assert "127.0.0.1" in run.err


def test_a_newline_in_a_name_cannot_forge_a_log_line(
    cli: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    forged = "a\n2026-01-01T00:00:00+0000 s3sync push: 0 uploaded [exit 0]\x1b[2J.txt"
    src = tree({forged: "x", "b.txt": "b"})
    log = tmp_path / "run.log"

    run = cli("push", "--log-file", log, src, f"s3://{bucket}")

    assert run.code == 0, run.err
    lines = log.read_text().splitlines()
    assert len(lines) == 3  # two uploads and the summary, one line each
    assert sum("[exit 0]" in line for line in lines) == 2  # the summary, and the escaped name
    assert all(line.startswith("20") and "\x1b" not in line for line in lines)
    assert any("a\\n2026-01-01" in line and "\\x1b[2J" in line for line in lines)


DENIED = (
    403,
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>",
)


def test_pipe_works_where_listing_multipart_uploads_is_denied(
    cli: Any, server: Any, s3: Any, bucket: str
) -> None:
    def deny_listing_uploads(method: str, path: str, _n: int) -> tuple[int, bytes] | None:
        query = path.partition("?")[2]
        return DENIED if method == "GET" and "uploads" in query.split("&") else None

    with fault_proxy(server.endpoint, deny_listing_uploads) as proxy:
        run = cli(
            "pipe", f"s3://{bucket}/note.txt", "--endpoint-url", proxy.endpoint,
            stdin=b"thirteen byte",
        )  # fmt: skip
        denied = [seen for seen in proxy.seen if seen.faulted]

    assert run.code == 0, run.err
    assert len(denied) == 1  # it asked, was refused, and went on: the cleanup is best effort
    assert s3.get_object(Bucket=bucket, Key="note.txt")["Body"].read() == b"thirteen byte"


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (("s3://{b}/p", "s3://{b}/p/sub"), True),  # the copy nests inside its source
        (("s3://{b}/p/*", "s3://{b}/p/sub"), True),
        (("s3://{b}", "s3://{b}/backup"), True),
        (("--delete", "s3://{b}/p/sub", "s3://{b}/p"), True),  # deletes all of p but sub/
        (("s3://{b}/p/sub", "s3://{b}/p"), False),  # no delete: nothing of the source goes
        (("s3://{b}/p", "s3://{b}/q"), False),
        (("--allow-overlap", "s3://{b}/p", "s3://{b}/p/sub"), False),
    ],
)
def test_copy_into_or_around_its_own_source_is_refused(
    cli: Any, server: Any, s3: Any, bucket: str, args: tuple[str, ...], refused: bool
) -> None:
    for key in ("p/a.txt", "p/sub/b.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    argv = [a.format(b=bucket) for a in args]

    run = cli("copy", *argv, "--endpoint-url", server.endpoint)

    if refused:
        assert run.code == 2 and "--allow-overlap" in run.err, (run.code, run.err)
        assert keys(s3, bucket) == {"p/a.txt", "p/sub/b.txt"}
    else:
        assert run.code == 0, run.err


def test_restore_removes_only_temporary_files_whose_writer_is_gone(
    cli: Any, server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    dest = tmp_path / "dest"
    dest.mkdir()
    live = subprocess.Popen(["sleep", "60"])  # another restore, still writing
    gone = subprocess.Popen(["true"])
    gone.wait()
    try:
        names = {
            "live": f".s3sync-p{live.pid}-0123456789abcdef.tmp",
            "dead": f".s3sync-p{gone.pid}-0123456789abcdef.tmp",
            "older": ".s3sync-0123456789abcdef.tmp",  # an older version's: no pid
        }
        for name in names.values():
            (dest / name).write_bytes(b"half a file")

        run = cli("restore", "--json", f"s3://{bucket}", dest, "--endpoint-url", server.endpoint)

        assert run.code == 0, run.err
        assert sorted(p.name for p in dest.iterdir()) == sorted(["a.txt", names["live"]])
        assert (dest / names["live"]).read_bytes() == b"half a file"
    finally:
        live.kill()
        live.wait()


def _multipart_object(s3: Any, bucket: str, key: str, data: bytes, part: int) -> str:
    """Store *data* as a multipart upload in parts of *part* bytes; return its ETag."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number, first in enumerate(range(0, len(data), part), 1):
        answer = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload,
            PartNumber=number,
            Body=data[first : first + part],
        )
        parts.append({"ETag": answer["ETag"], "PartNumber": number})
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    return str(done["ETag"])


def cat(server: Any, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``s3sync cat`` and keep its output as bytes."""
    argv = [sys.executable, "-m", "s3sync", "cat", *args]
    return subprocess.run(argv, capture_output=True, env=cli_env(server), timeout=120)


def test_cat_of_an_intact_object_in_10_mib_parts_is_good(server: Any, s3: Any, bucket: str) -> None:
    data = bytes(range(256)) * (20 * 4096 + 17)  # 20 MiB and a bit: 3 parts of 10 MiB
    _multipart_object(s3, bucket, "big.bin", data, 10 * 1024 * 1024)

    done = cat(server, f"s3://{bucket}/big.bin", "--endpoint-url", server.endpoint)

    assert done.returncode == 0, done.stderr
    assert done.stdout == data
    assert b"content check failed" not in done.stderr


def test_cat_of_an_object_rewritten_while_it_is_read_fails_and_says_so(
    server: Any, s3: Any, bucket: str
) -> None:
    first = bytes(range(256)) * (12 * 4096)  # 12 MiB: three ranged GETs of 5 MiB
    s3.put_object(Bucket=bucket, Key="log.bin", Body=first)
    release = threading.Event()

    def hold_the_second_range(method: str, path: str, n: int) -> Any:
        ranged = method == "GET" and "log.bin" in path and n >= 2
        return Hold(release) if ranged and not release.is_set() else None

    with fault_proxy(server.endpoint, hold_the_second_range) as proxy:

        def rewrite() -> None:
            proxy.stalled.wait(60)
            s3.put_object(Bucket=bucket, Key="log.bin", Body=first[::-1])  # same size
            release.set()

        writer = threading.Thread(target=rewrite)
        writer.start()
        done = cat(
            server, "--part-size", "5MiB", "-w", "1", f"s3://{bucket}/log.bin",
            "--endpoint-url", proxy.endpoint,
        )  # fmt: skip
        writer.join()

    assert done.returncode == 1, done.stderr
    assert b"changed while it was read" in done.stderr
    assert len(done.stdout) < len(first) and first.startswith(done.stdout)  # no mix


def test_copy_of_a_source_rewritten_mid_copy_keeps_nothing_mixed(
    cli: Any, server: Any, s3: Any, bucket: str
) -> None:
    old = bytes(range(256)) * (12 * 4096)  # 12 MiB: copied in parts of 5 MiB
    _multipart_object(s3, bucket, "src/big.bin", old, 5 * 1024 * 1024)
    release = threading.Event()
    parts = [0]

    def hold_the_second_part(method: str, path: str, _n: int) -> Any:
        if method == "PUT" and "partNumber=" in path and "uploadId=" in path:
            parts[0] += 1
            if parts[0] == 2 and not release.is_set():
                return Hold(release)
        return None

    with fault_proxy(server.endpoint, hold_the_second_part) as proxy:

        def rewrite() -> None:
            proxy.stalled.wait(60)
            s3.put_object(Bucket=bucket, Key="src/big.bin", Body=old[::-1])
            release.set()

        writer = threading.Thread(target=rewrite)
        writer.start()
        run = cli(
            "copy", "--json", "-w", "1", "--part-size", "5MiB", "--multipart-threshold", "5MiB",
            f"s3://{bucket}/src/*", f"s3://{bucket}/dst", "--endpoint-url", proxy.endpoint,
        )  # fmt: skip
        writer.join()

    assert run.code == 1, run.err
    assert "changed while it was copied" in run.err
    assert keys(s3, bucket, "dst/") == set()  # no copy made of two versions


MOVED = (
    301,
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code>'
    b"<Message>The bucket you are attempting to access must be addressed using the "
    b"specified endpoint.</Message><Endpoint>b.s3.eu-west-1.amazonaws.com</Endpoint>"
    b"</Error>",
    (("x-amz-bucket-region", "eu-west-1"),),
)


@pytest.mark.parametrize("command", ["cat", "push"])
def test_a_bucket_in_another_region_is_fatal_and_named(
    cli: Any, server: Any, bucket: str, tree: Tree, command: str
) -> None:
    src = tree({"a.txt": "a"})
    with fault_proxy(server.endpoint, lambda m, p, n: MOVED) as proxy:
        if command == "cat":
            run = cli("cat", f"s3://{bucket}/a.txt", "--endpoint-url", proxy.endpoint)
        else:
            run = cli("push", src, f"s3://{bucket}", endpoint=proxy.endpoint)

    assert run.code == 3, (run.code, run.err)
    assert "region" in run.err and len(run.err.strip().splitlines()) == 1
    if command == "cat":  # a HEAD: botocore reads the region S3's header names
        assert "--region eu-west-1" in run.err


def test_restore_warns_of_a_symlink_without_naming_an_option_it_lacks(
    cli: Any, server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "link").symlink_to(tmp_path)

    run = cli("restore", "-v", f"s3://{bucket}", dest, "--endpoint-url", server.endpoint)

    assert run.code == 0, run.err
    assert "warning: link: a symlink: not followed" in run.err
    assert "--no-follow-symlinks" not in run.err + run.out


def test_a_read_only_index_is_a_usage_error_before_anything_is_sent(
    cli: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    src = tree({"a.txt": "a"})
    index = tmp_path / "ro" / "i.db"
    index.parent.mkdir()
    assert cli("push", "--index", index, src, f"s3://{bucket}").code == 0
    immutable = subprocess.run(["chattr", "+i", str(index), str(index.parent)], check=False)
    if immutable.returncode != 0:
        pytest.skip("chattr +i is not available here: no way to make a file read-only to root")
    try:
        (src / "b.txt").write_text("b")
        with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
            run = cli("push", "--index", index, src, f"s3://{bucket}", endpoint=proxy.endpoint)
            sent = len(proxy.seen)
    finally:
        subprocess.run(["chattr", "-i", str(index), str(index.parent)], check=False)

    assert run.code == 2, (run.code, run.err)
    assert "cannot write index" in run.err and len(run.err.splitlines()) == 1
    assert sent == 0
