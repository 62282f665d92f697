"""Bad input and failures: a clear one-line error, the documented exit code, nothing lost."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tree
from tests.integration.conftest import Run, cli_env, keys

pytestmark = pytest.mark.integration


def _without_dac_override() -> None:
    """Make root obey file permissions in the child (drop CAP_DAC_OVERRIDE/READ_SEARCH)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_unprivileged(server: Any, *args: str | Path) -> Run:
    """Run the CLI so that unreadable files are unreadable, even for root."""
    argv = [sys.executable, "-m", "s3sync", *map(str, args), "--endpoint-url", server.endpoint]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=cli_env(server),
        preexec_fn=_without_dac_override if os.geteuid() == 0 else None,
        timeout=120,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def assert_one_line_error(run: Run, code: int, *fragments: str) -> None:
    assert run.code == code, (run.code, run.out, run.err)
    assert "Traceback" not in run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_unreadable_file_fails_that_file_and_withholds_every_delete(
    server: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree({"ok.html": "fine", "secret.html": "locked"})
    os.chmod(src / "secret.html", 0o000)
    s3.put_object(Bucket=bucket, Key="stale.html", Body=b"must survive")

    run = run_unprivileged(server, "push", "--json", src, f"s3://{bucket}")

    assert run.code == 1, run.err
    assert keys(s3, bucket) == {"ok.html", "stale.html"}
    failed = [r for r in run.json_lines() if r.get("status") == "failed"]
    assert [r["key"] for r in failed] == ["secret.html"]
    assert "cannot be read" in failed[0]["error"]
    summary = run.summary()
    assert summary["withheld_deletes"] == 1 and summary["withheld_reason"] == "errors"
    assert "secret.html" in run.err


def test_unreadable_directory_means_no_deletes_at_all(
    server: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree({"a.html": "a", "private/data.txt": "d"})
    s3.put_object(Bucket=bucket, Key="private/data.txt", Body=b"d")
    s3.put_object(Bucket=bucket, Key="elsewhere.html", Body=b"would be deleted")
    os.chmod(src / "private", 0o000)
    try:
        run = run_unprivileged(server, "push", "--json", src, f"s3://{bucket}")
    finally:
        os.chmod(src / "private", 0o755)

    assert run.code == 1
    assert keys(s3, bucket) == {"a.html", "private/data.txt", "elsewhere.html"}
    errors = [r for r in run.json_lines() if r["type"] == "error"]
    assert errors[0]["path"] == "private" and "cannot read directory" in errors[0]["message"]
    assert run.summary()["withheld_deletes"] == 2


def test_wrong_credentials_exit_3(cli: Any, server: Any, bucket: str, tree: Tree) -> None:
    src = tree({"a.html": "a"})
    env = cli_env(server, AWS_SECRET_ACCESS_KEY="not-the-secret")

    run = cli("push", src, f"s3://{bucket}", env=env)

    assert_one_line_error(run, 3, "secret key is wrong")


def test_unknown_access_key_exit_3(cli: Any, server: Any, bucket: str, tree: Tree) -> None:
    src = tree({"a.html": "a"})
    env = cli_env(server, AWS_ACCESS_KEY_ID="AKIANOBODY", AWS_SECRET_ACCESS_KEY="x")

    run = cli("push", src, f"s3://{bucket}", env=env)

    assert run.code == 3 and "Traceback" not in run.err
    assert len(run.err.strip().splitlines()) == 1


def test_missing_bucket_exit_3_and_names_it(cli: Any, server: Any, tree: Tree) -> None:
    src = tree({"a.html": "a"})

    run = cli("push", src, "s3://no-such-bucket-here/x")

    assert_one_line_error(run, 3, "bucket 'no-such-bucket-here' does not exist", server.endpoint)


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]  # bound but not listening: connections are refused


def test_closed_port_exit_3(cli: Any, bucket: str, tree: Tree, closed_port: int) -> None:
    src = tree({"a.html": "a"})

    run = cli(
        "push", "--retries", "1", src, f"s3://{bucket}", endpoint=f"http://127.0.0.1:{closed_port}"
    )

    assert_one_line_error(run, 3, "refused the connection", str(closed_port))


def test_missing_source_withholds_deletes_exit_5_or_3_without_deletes(
    cli: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="a.html", Body=b"a")

    guarded = cli("push", "--json", tmp_path / "not-there", f"s3://{bucket}")
    no_delete = cli("push", "-D", tmp_path / "not-there", f"s3://{bucket}")

    assert guarded.code == 5
    assert guarded.summary()["withheld_deletes"] == 1
    assert "source directory is missing" in guarded.summary()["withheld_reason"]
    assert_one_line_error(no_delete, 3, "does not exist")
    assert keys(s3, bucket) == {"a.html"}


def test_bad_url_and_bad_config_exit_2(cli: Any, tree: Tree, tmp_path: Path) -> None:
    src = tree({"a.html": "a"})
    conf = tmp_path / "bad.toml"
    conf.write_text("workers = 4\n\nfudgee = 10\n")

    bad_url = cli("push", src, "bucket/path")
    bad_conf = cli("push", "--config", conf, src, "s3://b")
    bad_glob = cli("push", "--exclude", "[abc", src, "s3://b")

    assert bad_url.code == 2 and "not an S3 URL" in bad_url.err
    assert bad_conf.code == 2 and "line 3" in bad_conf.err and "fudgee" in bad_conf.err
    assert bad_glob.code == 2 and "[abc" in bad_glob.err


def test_interrupt_finishes_in_flight_work_skips_deletes_and_exits_130(
    server: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree({f"d{i % 10}/f{i}.txt": f"file {i}" for i in range(400)})
    s3.put_object(Bucket=bucket, Key="stale.txt", Body=b"must survive")
    argv = [
        sys.executable,
        "-m",
        "s3sync",
        "push",
        "--json",
        "-w",
        "1",
        str(src),
        f"s3://{bucket}",
        "--endpoint-url",
        server.endpoint,
    ]
    child = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(server), text=True
    )
    assert child.stdout is not None
    first = json.loads(child.stdout.readline())  # the first upload has finished
    child.send_signal(signal.SIGINT)
    # the rest through the same reader: it may hold lines already (communicate() would
    # read past them)
    rest = child.stdout.read()
    err = child.stderr.read() if child.stderr is not None else ""
    child.wait(timeout=60)

    records = [first] + [json.loads(line) for line in rest.splitlines()]
    summary = records[-1]
    assert child.returncode == 130, err
    assert summary["type"] == "summary" and summary["interrupted"] is True
    uploaded = {r["key"] for r in records if r["type"] == "upload" and r["status"] == "ok"}
    assert 1 <= len(uploaded) < 400
    assert keys(s3, bucket) == uploaded | {"stale.txt"}
    assert summary["deleted"] == 0


def test_undecodable_and_overlong_names_are_reported_skipped_and_counted(
    cli: Any, s3: Any, bucket: str, tree: Tree
) -> None:
    src = tree({"ok.txt": "fine", "x" * 200 + "/" + "y" * 200 + "/" + "z" * 250: "too long"})
    with open(os.path.join(os.fsencode(src), b"caf\xe9.txt"), "wb") as f:
        f.write(b"latin-1 name")
    prefix = "p" * 400
    s3.put_object(Bucket=bucket, Key=f"{prefix}/stale.txt", Body=b"must survive an error run")

    run = cli("push", "--json", src, f"s3://{bucket}/{prefix}")

    assert run.code == 1
    errors = {r["path"]: r["message"] for r in run.json_lines() if r["type"] == "error"}
    assert "caf\ufffd.txt" in errors and "UTF-8" in errors["caf\ufffd.txt"]
    assert any("over S3's limit" in m for m in errors.values())
    assert keys(s3, bucket) == {f"{prefix}/ok.txt", f"{prefix}/stale.txt"}
    assert run.summary()["failed"] == 2
