"""More S3 servers on loopback, for tests that must hold on more than one: moto's server,
s3rver (npm), and SeaweedFS's S3 gateway over TLS with a private CA made here.

Each ``start_*`` returns a running Peer; ``stop`` ends it. s3rver comes from
``.venv/node`` (``make venv-node`` installs it); ``s3rver_binary`` says where it is.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tools import seaweed

ROOT = Path(__file__).resolve().parent.parent
S3RVER = ROOT / ".venv" / "node" / "node_modules" / ".bin" / "s3rver"


@dataclass(frozen=True)
class Peer:
    """A running S3 server: its endpoint, credentials, pid, and the CA file that
    verifies its certificate (TLS only)."""

    name: str
    endpoint: str
    access_key: str
    secret_key: str
    pid: int
    ca: str | None = None
    metrics: str | None = None  # Prometheus URL of a SeaweedFS gateway started with it

    def env(self) -> dict[str, str]:
        """Return the environment that points the AWS SDK chain at this server."""
        env = seaweed.sdk_env(self.access_key, self.secret_key)
        if self.ca is not None:
            env["AWS_CA_BUNDLE"] = self.ca
        return env


def stop(peer: Peer) -> None:
    """Stop *peer* (SIGTERM, then SIGKILL) and wait until it is gone."""
    seaweed._stop_pid(peer.pid, 10.0)


def _wait(endpoint: str, process: subprocess.Popen[bytes], log: Path, ca: str | None) -> None:
    import ssl

    context = ssl.create_default_context(cafile=ca) if ca else None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{endpoint}: server exited; see {log}")
        try:
            urllib.request.urlopen(endpoint, timeout=1, context=context)
            return
        except urllib.error.HTTPError:
            return  # an S3 error answer: it is up
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{endpoint} did not come up in 60s; see {log}")


def _spawn(
    name: str, args: list[str], directory: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / f"{name}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        args,
        cwd=directory,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    log.close()
    return process, log_path


def start_moto(directory: Path) -> Peer:
    """Start moto's S3 server on a free loopback port."""
    (port,) = seaweed._free_ports(1)
    moto = Path(sys.executable).parent / "moto_server"
    process, log = _spawn("moto", [str(moto), "-H", "127.0.0.1", "-p", str(port)], directory)
    endpoint = f"http://127.0.0.1:{port}"
    _wait(endpoint, process, log, None)
    return Peer("moto", endpoint, "moto-key", "moto-secret", process.pid)


def s3rver_binary() -> Path | None:
    """Return s3rver's launcher when ``make`` installed it, else None."""
    return S3RVER if S3RVER.exists() else None


def start_s3rver(directory: Path) -> Peer:
    """Start s3rver (npm) on a free loopback port, its data in *directory*."""
    binary = s3rver_binary()
    if binary is None:
        raise RuntimeError("s3rver is not installed: run make venv-node")
    (port,) = seaweed._free_ports(1)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    args = [str(binary), "-d", str(directory / "data"), "-a", "127.0.0.1", "-p", str(port), "-s"]
    process, log = _spawn("s3rver", args, directory)
    endpoint = f"http://127.0.0.1:{port}"
    _wait(endpoint, process, log, None)
    return Peer("s3rver", endpoint, "S3RVER", "S3RVER", process.pid)


def start_tls_gateway(server: seaweed.Server, directory: Path, *, metrics: bool = False) -> Peer:
    """Start a second SeaweedFS S3 gateway on *server*'s filer, serving TLS with a
    certificate of a private CA made here (``Peer.ca`` is its file): the same buckets,
    over https. With *metrics* it counts its requests (``seaweed.request_counts`` of
    ``Peer.metrics``)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_certificates(directory)
    ports = dict(server.ports)
    port, grpc = seaweed._free_ports(2)
    args = [
        seaweed.weed_binary(),
        "s3",
        f"-filer=127.0.0.1:{ports['filer.port']}.{ports['filer.port.grpc']}",
        "-ip.bind=127.0.0.1",
        f"-port={port}",
        f"-port.grpc={grpc}",
        "-port.iceberg=0",
        f"-cert.file={cert}",
        f"-key.file={key}",
    ]
    metrics_url = None
    if metrics:
        (metrics_port,) = seaweed._free_ports(1)
        args.append(f"-metricsPort={metrics_port}")
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    env = {"AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key}
    process, log = _spawn("tls-gateway", args, directory, env)
    endpoint = f"https://127.0.0.1:{port}"
    _wait(endpoint, process, log, str(ca))
    return Peer(
        "seaweedfs-tls",
        endpoint,
        server.access_key,
        server.secret_key,
        process.pid,
        str(ca),
        metrics_url,
    )


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """Write a private CA and a certificate it signed for 127.0.0.1 and localhost into
    *directory*; return the CA's, the certificate's and its key's paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s3sync test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths
