"""A real SeaweedFS for the whole session, a fresh bucket per test, and the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tools import seaweed


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[seaweed.Server]:
    """Start SeaweedFS on loopback for the session; stop it at the end."""
    running = seaweed.start(tmp_path_factory.mktemp("seaweedfs"))
    yield running
    seaweed.stop(running)


@pytest.fixture(scope="session")
def s3(server: seaweed.Server) -> Any:
    """Return a plain boto3 client for setting up and checking the bucket."""
    return server.client()


@pytest.fixture
def bucket(s3: Any) -> str:
    """Create and return an empty bucket of its own for this test."""
    name = f"t-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    return name


@dataclass(frozen=True)
class Run:
    """The result of one CLI run."""

    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict[str, Any]]:
        """Return stdout parsed as JSON lines."""
        return [json.loads(line) for line in self.out.splitlines()]

    def summary(self) -> dict[str, Any]:
        """Return the JSON summary object (needs --json)."""
        (found,) = [r for r in self.json_lines() if r["type"] == "summary"]
        return found

    def actions(self, kind: str) -> dict[str, str]:
        """Return key -> reason for JSON records of actions of *kind* taken (needs --json)."""
        return {
            r["key"]: r["reason"]
            for r in self.json_lines()
            if r["type"] == kind and r["status"] != "unchanged"
        }


def cli_env(server: seaweed.Server, **extra: str) -> dict[str, str]:
    """Return an environment that reaches *server* and nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, **server.env(), **extra}


@pytest.fixture
def cli(server: seaweed.Server) -> Any:
    """Return a function that runs ``python -m s3sync ARGS`` against the server."""

    def run(
        *args: str | Path,
        endpoint: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        stdin: bytes = b"",
    ) -> Run:
        argv = [sys.executable, "-m", "s3sync", *map(str, args)]
        if argv[3] in ("push",) and "--endpoint-url" not in args:
            argv += ["--endpoint-url", endpoint or server.endpoint]
        done = subprocess.run(
            argv, input=stdin, capture_output=True, env=env or cli_env(server), timeout=timeout
        )
        return Run(done.returncode, done.stdout.decode(), done.stderr.decode())

    return run


def objects(s3: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Return every object under *prefix* as key -> bytes."""
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()):
            found[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return found


def keys(s3: Any, bucket: str, prefix: str = "") -> set[str]:
    """Return the keys under *prefix*."""
    found: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.update(obj["Key"] for obj in page.get("Contents", ()))
    return found
