"""Two s3sync checkouts side by side over plain HTTP and over TLS: what a change of the
transport costs or gains, phase by phase, measured in one run.

Usage: python -m benchmarks.transport OLD_CHECKOUT [--files N] [--rounds R] [--rtt 0,20,80]

Both run against one SeaweedFS (``http://``) and a second S3 gateway of it serving
TLS with a private CA (``https://``), directly or through a proxy that adds round-trip
latency (``latency_proxy.js``, node). The old checkout gets the CA as ``SSL_CERT_FILE``
too, which older versions needed; the new one only ``AWS_CA_BUNDLE``. Each phase runs
old and new alternately, ``--rounds`` times, and the medians are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import links, trees
from tools import seaweed, servers

ROOT = Path(__file__).resolve().parent.parent


def timed(checkout: Path, args: list[str], env: dict[str, str]) -> float:
    """Run ``python -m s3sync ARGS`` from *checkout*; return its wall seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "s3sync", *args],
        cwd=checkout,
        env={**env, "PYTHONPATH": str(checkout)},
        capture_output=True,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{checkout}: s3sync {' '.join(args)}: {done.stderr.decode()}")
    return took


@contextlib.contextmanager
def delayed(endpoint: str, rtt_ms: int) -> Iterator[str]:
    """Yield *endpoint* reached through a proxy adding *rtt_ms* of round trip (itself
    when 0)."""
    if rtt_ms == 0:
        yield endpoint
        return
    with links.delayed(endpoint, rtt_ms) as proxy:
        yield proxy.endpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.transport")
    parser.add_argument("old", type=Path, help="checkout of the s3sync to compare with")
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rtt", default="0", help="round trips to add, in ms: 0,20,80")
    parser.add_argument(
        "--fresh", action="store_true", help="files written just before the first push"
    )
    options = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="s3sync-transport-"))
    server = seaweed.start(work / "seaweedfs")
    tls = servers.start_tls_gateway(server, work / "tls")
    try:
        (work / "trash").mkdir()
        src = work / "site"
        trees.website(src, options.files, aged=not options.fresh)
        s3 = server.client()
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        base |= server.env()
        checkouts = {"old": options.old.resolve(), "new": ROOT}
        results: dict[tuple[str, int, str, str], list[float]] = {}
        rtts = [int(r) for r in options.rtt.split(",")]
        env = {**base, "AWS_CA_BUNDLE": tls.ca or "", "SSL_CERT_FILE": tls.ca or ""}
        phases = ("push", "no-op push", "restore", "no-op restore")
        for scheme, direct in (("http", server.endpoint), ("https", tls.endpoint)):
            for rtt in rtts:
                with delayed(direct, rtt) as endpoint:
                    for _ in range(options.rounds):
                        for name, checkout in checkouts.items():
                            for phase, took in run_phases(checkout, endpoint, src, work, s3, env):
                                results.setdefault((scheme, rtt, phase, name), []).append(took)
        tree = "fresh" if options.fresh else "aged"
        print(f"{options.files} {tree} website files, median of {options.rounds} (seconds)")
        print(f"{'scheme':7} {'rtt':>4} {'phase':14} {'old':>7} {'new':>7} {'new/old':>8}")
        for scheme in ("http", "https"):
            for rtt in rtts:
                for phase in phases:
                    old = statistics.median(results[(scheme, rtt, phase, "old")])
                    new = statistics.median(results[(scheme, rtt, phase, "new")])
                    print(f"{scheme:7} {rtt:4} {phase:14} {old:7.2f} {new:7.2f} {new / old:8.2f}")
    finally:
        servers.stop(tls)
        seaweed.stop(server)
        shutil.rmtree(work, ignore_errors=True)
    return 0


def run_phases(
    checkout: Path, endpoint: str, src: Path, work: Path, s3: Any, env: dict[str, str]
) -> Iterator[tuple[str, float]]:
    """Push *src* to a new bucket, push again, restore, restore again; yield each phase's
    wall seconds."""
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    ep = ["--endpoint-url", endpoint]
    target = f"s3://{bucket}/site"
    dest = work / f"dest-{bucket}"
    phases = {
        "push": ["push", "-q", str(src), target, *ep],
        "no-op push": ["push", "-q", str(src), target, *ep],
        "restore": ["restore", "-q", target, str(dest), *ep],
        "no-op restore": ["restore", "-q", target, str(dest), *ep],
    }
    for phase, args in phases.items():
        yield phase, timed(checkout, args, env)
    # removed at the end: on ext4 a new file skips inodes freed in the last minute or
    # more, which would slow the next restore for files of this one
    dest.rename(work / "trash" / dest.name)


if __name__ == "__main__":
    raise SystemExit(main())
