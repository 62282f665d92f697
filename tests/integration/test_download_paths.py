"""How small objects come down: from a plain-HTTP endpoint through the lean client on
one thread, else through awscrt, else botocore on the workers, into the same files."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from s3sync.paths import MARK_XATTR
from tests.conftest import write_tree
from tests.integration.conftest import Run, cli_env
from tests.integration.proxy import Fault, Hold, Reset, fault_proxy

pytestmark = pytest.mark.integration


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


NAMES = {
    "a.html": "<p>a</p>",
    "b/c.css": "c{}",
    "d/noext": "plain",
    "sp ace/per%cent+plus.txt": "odd name",
    "ünï/çødé.txt": "unicode",
}


def files_of(root: Path) -> dict[str, tuple[bytes, int, bytes | None, int]]:
    """Every file under *root*: its bytes, mtime, the mark restore left on it, and its
    permission bits."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            mark: bytes | None = os.getxattr(path, MARK_XATTR)
        except OSError:
            mark = None
        found[path.relative_to(root).as_posix()] = (
            path.read_bytes(),
            path.stat().st_mtime_ns,
            mark,
            path.stat().st_mode & 0o777,
        )
    return found


def test_every_download_path_writes_the_same_files(
    cli: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", NAMES)
    os.utime(src / "a.html", ns=(10**18, 1_500_000_000_123_456_789))
    assert cli("push", src, f"s3://{bucket}/site").code == 0
    trees = {}
    for name, crt in (("crt", "1"), ("boto", "0")):
        env = cli_env(server, S3SYNC_CRT=crt)
        dest = tmp_path / name
        run = cli(
            "restore", "--json", f"s3://{bucket}/site", dest,
            "--endpoint-url", server.endpoint, env=env,
        )  # fmt: skip
        assert run.code == 0, run.err
        assert json.loads(run.out.splitlines()[-1])["downloaded"] == len(NAMES)
        trees[name] = files_of(dest)
    assert trees["crt"] == trees["boto"]
    body, mtime, mark, mode = trees["crt"]["a.html"]
    assert (body, mtime) == (b"<p>a</p>", 1_500_000_000_123_456_789)
    assert mode == 0o666 & ~umask()
    assert mark is not None and mark.startswith(b'"')  # the ETag it holds
    assert {k: v[0].decode() for k, v in trees["crt"].items()} == NAMES


def test_a_get_lost_on_a_reset_connection_is_sent_again(
    cli: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    """A server may close a keep-alive connection just as a GET goes out on it: that GET
    is retried, and the file written whole."""
    files = {f"f{i}.txt": f"file {i}" for i in range(4)}
    src = write_tree(tmp_path / "src", files)
    assert cli("push", src, f"s3://{bucket}/site").code == 0
    gets: list[str] = []

    def reset_third_get_once(method: str, path: str, _n: int) -> Fault | None:
        if method != "GET" or "list-type" in path:
            return None
        gets.append(path)
        return Reset() if len(gets) == 3 else None

    with fault_proxy(server.endpoint, reset_third_get_once) as proxy:
        run = cli(
            "restore", "-w", "1", "--json", f"s3://{bucket}/site", tmp_path / "dest",
            "--endpoint-url", proxy.endpoint,
        )  # fmt: skip
    assert run.code == 0, run.err
    summary = json.loads(run.out.splitlines()[-1])
    assert summary["downloaded"] == 4 and summary["retries"] == 1
    assert len(gets) == 5 and gets.count(gets[2]) == 2  # the lost GET, and it again
    assert {k: v[0].decode() for k, v in files_of(tmp_path / "dest").items()} == files


def test_downloads_start_before_the_listing_ends(
    cli: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    """Once the (empty) destination is scanned, what the first page of the listing
    names is new: it comes down while the second page is still held back."""
    files = {f"f{i:04}.txt": str(i) for i in range(1001)}  # two pages of a listing
    src = write_tree(tmp_path / "src", files)
    assert cli("push", src, f"s3://{bucket}/site").code == 0
    release, got = threading.Event(), threading.Event()

    def hold_second_page(method: str, path: str, _n: int) -> Fault | None:
        if "continuation-token" in path:
            return Hold(release)
        if method == "GET" and "list-type" not in path:
            got.set()
        return None

    result: list[Run] = []
    with fault_proxy(server.endpoint, hold_second_page) as proxy:
        args = ("restore", "--json", f"s3://{bucket}/site", tmp_path / "dest")
        runner = threading.Thread(
            target=lambda: result.append(cli(*args, "--endpoint-url", proxy.endpoint))
        )
        runner.start()
        try:
            downloading = got.wait(30)
        finally:
            release.set()
            runner.join(120)
    assert downloading, "no GET before the last page of the listing"
    (run,) = result
    assert run.code == 0, run.err
    assert json.loads(run.out.splitlines()[-1])["downloaded"] == 1001
