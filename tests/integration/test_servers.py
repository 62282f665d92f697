"""The core scenario against every server: moto, s3rver (npm), and SeaweedFS over TLS
with a private CA given only as AWS_CA_BUNDLE (SeaweedFS over plain HTTP runs it in
every other integration test). Each run is the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_tree
from tools import seaweed, servers

pytestmark = pytest.mark.integration

BIG = bytes(range(256)) * (6 * 4096 + 7)  # 6 MiB and a bit: two parts of 5 MiB
FILES: dict[str, bytes | str] = {
    "index.html": "<h1>home</h1>",
    "d/a.css": "body{}",
    "d/e/big.bin": BIG,
    "odd name é.txt": "odd",  # no "+": s3rver reads it as a space in a copy source
}


@pytest.fixture(scope="session")
def moto_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Peer]:
    peer = servers.start_moto(tmp_path_factory.mktemp("moto"))
    yield peer
    servers.stop(peer)


@pytest.fixture(scope="session")
def s3rver_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Peer]:
    if servers.s3rver_binary() is None:
        pytest.skip("s3rver is not installed (make venv-node needs npm or apt-get)")
    peer = servers.start_s3rver(tmp_path_factory.mktemp("s3rver"))
    yield peer
    servers.stop(peer)


@pytest.fixture(scope="session")
def tls_peer(
    server: seaweed.Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[servers.Peer]:
    peer = servers.start_tls_gateway(server, tmp_path_factory.mktemp("tls"))
    yield peer
    servers.stop(peer)


def peer_env(peer: servers.Peer, **extra: str) -> dict[str, str]:
    """An environment that reaches *peer* and nothing else (no CA but its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "REQUESTS_CA"))}
    return {**env, **peer.env(), **extra}


def run(peer: servers.Peer, *args: str | Path, stdin: bytes = b"", **env: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "s3sync", *map(str, args)],
        input=stdin,
        capture_output=True,
        env=peer_env(peer, **env),
        timeout=180,
    )
    return done


def summary(done: Any) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr.decode()
    return dict(json.loads(done.stdout.decode().splitlines()[-1]))


def client(peer: servers.Peer) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=peer.endpoint,
        aws_access_key_id=peer.access_key,
        aws_secret_access_key=peer.secret_key,
        region_name="us-east-1",
        verify=peer.ca,
        config=Config(s3={"addressing_style": "path"}),
    )


def stored(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            found[obj["Key"].removeprefix(prefix)] = body
    return found


def as_bytes(files: dict[str, bytes | str]) -> dict[str, bytes]:
    return {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}


def core_scenario(peer: servers.Peer, tmp_path: Path) -> None:
    """push, no-op, incremental with deletes, restore, checksum push, copy, pipe and cat."""
    s3 = client(peer)
    bucket = f"b-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=bucket)
    ep = ("--endpoint-url", peer.endpoint)
    parts = ("--multipart-threshold", "5MiB", "--part-size", "5MiB")
    src = write_tree(tmp_path / "src", FILES, mtime=1_600_000_000)
    target = f"s3://{bucket}/site"

    first = summary(run(peer, "push", "--json", *parts, src, target, *ep))
    assert first["uploaded"] == len(FILES)
    assert stored(s3, bucket, "site/") == as_bytes(FILES)

    assert summary(run(peer, "push", "--json", *parts, src, target, *ep))["uploaded"] == 0

    (src / "index.html").write_text("<h1>home, changed</h1>")
    (src / "d" / "a.css").unlink()
    (src / "new.txt").write_text("new")
    changed = summary(run(peer, "push", "--json", *parts, src, target, *ep))
    assert (changed["uploaded"], changed["deleted"]) == (2, 1)
    now = {k: (src / k).read_bytes() for k in ("index.html", "d/e/big.bin", "odd name é.txt")}
    now["new.txt"] = b"new"
    assert stored(s3, bucket, "site/") == now

    dest = tmp_path / "dest"
    assert summary(run(peer, "restore", "--json", target, dest, *ep))["downloaded"] == len(now)
    assert {k: (dest / k).read_bytes() for k in now} == now

    checked = summary(run(peer, "push", "--json", "--compare", "checksum", src, target, *ep))
    assert checked["uploaded"] == 0 and checked["unchanged"] == len(now)

    copied = summary(run(peer, "copy", "--json", target, f"s3://{bucket}/copy", *ep))
    assert copied["copied"] == len(now)
    assert stored(s3, bucket, "copy/site/") == now  # a prefix without "/" is copied itself

    streamed = BIG[: 5 * 1024 * 1024 + 99]
    piped = run(peer, "pipe", f"s3://{bucket}/stream.bin", *ep, stdin=streamed)
    assert piped.returncode == 0, piped.stderr.decode()
    assert s3.get_object(Bucket=bucket, Key="stream.bin")["Body"].read() == streamed
    out = run(peer, "cat", f"s3://{bucket}/stream.bin", *ep)
    assert out.returncode == 0 and out.stdout == streamed


def test_core_scenario_on_moto(moto_peer: servers.Peer, tmp_path: Path) -> None:
    core_scenario(moto_peer, tmp_path)


def test_core_scenario_on_s3rver(s3rver_peer: servers.Peer, tmp_path: Path) -> None:
    core_scenario(s3rver_peer, tmp_path)


def test_core_scenario_over_tls_with_a_private_ca(tls_peer: servers.Peer, tmp_path: Path) -> None:
    core_scenario(tls_peer, tmp_path)


@pytest.mark.parametrize("crt", ["1", "0"])
def test_a_certificate_no_ca_verifies_is_named_once_and_fatal(
    crt: str, tls_peer: servers.Peer, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", {"a.html": "a"})
    s3 = client(tls_peer)
    bucket = f"b-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=bucket)
    wrong = str(servers.make_certificates(tmp_path)[0])  # another private CA
    args = ("push", src, f"s3://{bucket}/site", "--endpoint-url", tls_peer.endpoint)
    done = run(tls_peer, *args, S3SYNC_CRT=crt, AWS_CA_BUNDLE=wrong)
    assert done.returncode == 3
    (line,) = done.stderr.decode().splitlines()
    assert "certificate verification failed" in line and f"CA file {wrong}" in line
    assert not s3.list_objects_v2(Bucket=bucket).get("Contents")

    insecure = run(tls_peer, *args, "--no-verify-ssl", S3SYNC_CRT=crt, AWS_CA_BUNDLE=wrong)
    assert insecure.returncode == 0, insecure.stderr.decode()
    assert s3.get_object(Bucket=bucket, Key="site/a.html")["Body"].read() == b"a"
