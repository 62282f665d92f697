"""Odd but legal names go up and come back exactly; impossible ones are reported, never
a crash; huge directories and deep trees work."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import Any

from tests.conftest import Tree
from tests.integration.conftest import keys, objects
from tests.integration.proxy import Fault, fault_proxy
from tests.integration.test_restore import listing

NFC = unicodedata.normalize("NFC", "café.txt")
NFD = unicodedata.normalize("NFD", "café.txt")
# a key of exactly S3's 1,024-byte limit, in segments a file system accepts (255 bytes max)
LONG_DIRS = "/".join(c * 200 for c in "abcd")
AT_LIMIT = f"{LONG_DIRS}/" + "e" * (1024 - len(LONG_DIRS) - 1)
ODD: dict[str, bytes | str] = {
    f"forms/{NFC}": "composed",
    f"forms/{NFD}": "decomposed",
    "line\nbreak.txt": "newline",
    "tab\there.txt": "tab",
    "esc\x1b[31mred.txt": "escape sequence",
    "-n": "looks like an option",
    "--help": "so does this",
    "dir/-leading-dash.txt": "dash",
    "trailing space ": "space",
    "d/" * 100 + "deep.txt": "100 levels down",
    AT_LIMIT: "1,024 bytes of key",
}


def local_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_odd_names_round_trip_exactly_and_a_second_push_does_nothing(
    cli: Any, s3: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    assert NFC != NFD and len(AT_LIMIT.encode()) == 1024
    src = tree(ODD)
    (src / (AT_LIMIT + "e")).write_text("1,025 bytes: too long")

    first = cli("push", "--json", src, f"s3://{bucket}")
    second = cli("push", "--json", src, f"s3://{bucket}")
    dest = tmp_path / "dest"
    restored = cli("restore", "--json", f"s3://{bucket}", dest, "--endpoint-url", server.endpoint)

    assert first.code == 1  # the one name over the limit
    (error,) = [r for r in first.json_lines() if r["type"] == "error"]
    assert "over S3's limit of 1024" in error["message"]
    want = {k: v.encode() if isinstance(v, str) else v for k, v in ODD.items()}
    assert objects(s3, bucket) == want
    assert (second.summary()["uploaded"], second.summary()["deleted"]) == (0, 0)
    assert restored.code == 0, restored.err
    assert local_files(dest) == want


def test_ten_thousand_files_in_one_directory(
    cli: Any, s3: Any, server: Any, bucket: str, tree: Tree, tmp_path: Path
) -> None:
    names = {f"many/{i:05}.txt": "" for i in range(10_000)}
    src = tree(names)

    first = cli("push", "--json", "-q", src, f"s3://{bucket}", timeout=600)
    second = cli("push", "--json", src, f"s3://{bucket}")
    dest = tmp_path / "dest"
    restored = cli(
        "restore", "--json", f"s3://{bucket}", dest, "--endpoint-url", server.endpoint, timeout=600
    )

    assert first.code == 0 and first.summary()["uploaded"] == 10_000
    assert keys(s3, bucket) == set(names)
    assert (second.summary()["uploaded"], second.summary()["unchanged"]) == (0, 10_000)
    assert restored.code == 0 and restored.summary()["downloaded"] == 10_000
    assert sorted(os.listdir(dest / "many")) == sorted(n.removeprefix("many/") for n in names)


def test_a_backslash_name_is_never_deleted_when_the_server_renames_it(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree({"back\\slash.txt": "backslash", "plain.txt": "plain"})

    first = cli("push", "--json", src, f"s3://{bucket}")
    second = cli("push", "--json", src, f"s3://{bucket}")

    assert first.code == 0 and second.code == 0, second.err
    stored = objects(s3, bucket)
    # S3 keeps the name; SeaweedFS turns the backslash into a slash. Either way it survives.
    assert stored in (
        {"back\\slash.txt": b"backslash", "plain.txt": b"plain"},
        {"back/slash.txt": b"backslash", "plain.txt": b"plain"},
    )
    if "back/slash.txt" in stored:
        (warning,) = [r for r in second.json_lines() if r["type"] == "warning"]
        assert warning["path"] == "back/slash.txt" and "not deleted" in warning["message"]
        assert second.summary()["deleted"] == 0


def test_push_never_deletes_keys_no_local_path_can_hold(
    cli: Any, s3: Any, server: Any, bucket: str, tree: Tree
) -> None:
    # SeaweedFS cannot store most of these keys; the proxy shows push a listing that has
    # them, as S3 would, and records what push asks to delete.
    src = tree({"a": "a file named a", "keep.txt": "kept"})
    odd = ["a/", "a//b", "x/../y", "./z", "dir/", "trailing/", "..", "."]
    body = listing(bucket, "", [*odd, "gone.txt", "keep.txt"])

    def forged(method: str, path: str, _n: int) -> Fault | None:
        return (200, body) if method == "GET" and "list-type=2" in path else None

    with fault_proxy(server.endpoint, forged) as proxy:
        run = cli("push", "--json", src, f"s3://{bucket}", endpoint=proxy.endpoint)
        deletes = [s.body for s in proxy.seen if s.method == "POST" and "delete" in s.path]

    assert run.code == 0, run.err
    asked = set(re.findall(rb"<Key>(.*?)</Key>", b"".join(deletes)))
    assert asked == {b"gone.txt"}
