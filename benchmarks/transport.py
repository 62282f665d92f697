"""Two s3sync checkouts side by side over plain HTTP and over TLS: what a change of the
transport costs or gains, phase by phase, measured in one run.

Usage: python -m benchmarks.transport OLD_CHECKOUT [--files N] [--rounds R]

Both run against one SeaweedFS (``http://``) and a second S3 gateway of it serving
TLS with a private CA (``https://``). The old checkout gets the CA as ``SSL_CERT_FILE``
too, which older versions needed; the new one only ``AWS_CA_BUNDLE``. Each phase runs
old and new alternately, ``--rounds`` times, and the medians are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks import trees
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.transport")
    parser.add_argument("old", type=Path, help="checkout of the s3sync to compare with")
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="s3sync-transport-"))
    server = seaweed.start(work / "seaweedfs")
    tls = servers.start_tls_gateway(server, work / "tls")
    try:
        src = work / "site"
        trees.website(src, options.files)
        s3 = server.client()
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        base |= server.env()
        checkouts = {"old": options.old.resolve(), "new": ROOT}
        results: dict[tuple[str, str, str], list[float]] = {}
        for scheme, endpoint in (("http", server.endpoint), ("https", tls.endpoint)):
            env = {**base, "AWS_CA_BUNDLE": tls.ca or "", "SSL_CERT_FILE": tls.ca or ""}
            for _ in range(options.rounds):
                for name, checkout in checkouts.items():
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
                        took = timed(checkout, args, env)
                        results.setdefault((scheme, phase, name), []).append(took)
                    shutil.rmtree(dest)
        print(f"{options.files} website files, median of {options.rounds} (seconds)")
        print(f"{'scheme':7} {'phase':14} {'old':>7} {'new':>7} {'new/old':>8}")
        for scheme in ("http", "https"):
            for phase in ("push", "no-op push", "restore", "no-op restore"):
                old = statistics.median(results[(scheme, phase, "old")])
                new = statistics.median(results[(scheme, phase, "new")])
                print(f"{scheme:7} {phase:14} {old:7.2f} {new:7.2f} {new / old:8.2f}")
    finally:
        servers.stop(tls)
        seaweed.stop(server)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
