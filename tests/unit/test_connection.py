"""A Connection checks its options at once and loads boto3 only for the first request."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from s3sync.errors import ConfigError, Disposition, RemoteError, classify
from s3sync.index import Binding, Index
from s3sync.model import Stat
from s3sync.retry import Retrier, RetryPolicy
from s3sync.store import remote
from s3sync.store.remote import Clients, Connection, S3Store


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1:9000", "127.0.0.1:9000", "http://", "http://[::1", "http://h:99999"]
)
def test_a_bad_endpoint_url_is_refused_before_any_request(url: str) -> None:
    with pytest.raises(ConfigError, match="bad endpoint URL"):
        Connection(endpoint_url=url).open("bucket")


def loaded(code: str, modules: tuple[str, ...]) -> list[str]:
    """Run *code* in a fresh interpreter; return which of *modules* (or their
    submodules) it loaded."""
    probe = f"{code}\nimport sys\nprint(sorted(m for m in sys.modules if m.startswith({modules})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return list(ast.literal_eval(out.stdout.strip()))


def test_opening_a_store_loads_neither_boto3_nor_awscrt() -> None:
    # a no-op push with an index sends nothing: it must not pay for loading them
    code = (
        "from s3sync.store.remote import Connection\n"
        "store = Connection(endpoint_url='http://127.0.0.1:9').open('b')\n"
        "assert store.endpoint == 'http://127.0.0.1:9'"
    )
    assert loaded(code, ("boto3", "botocore", "awscrt", "s3transfer", "urllib3")) == []


def test_the_client_is_made_on_first_use_with_the_endpoint_given() -> None:
    store = Connection(endpoint_url="http://127.0.0.1:9", region="eu-west-1").open("b")
    assert store.client.meta.endpoint_url == "http://127.0.0.1:9"
    assert store.client.meta.region_name == "eu-west-1"


def test_a_client_that_cannot_be_made_stops_the_run() -> None:
    def connect() -> Clients:
        raise ConfigError("AWS profile 'gone' is not configured")

    store = S3Store(
        connect,
        "b",
        endpoint="http://127.0.0.1:9",
        retrier=Retrier(RetryPolicy(attempts=3), classify, lambda _: None, lambda: 0.5),
    )
    with pytest.raises(RemoteError, match="profile 'gone'") as raised:
        store.head("key", on_retry=lambda _: None)
    assert classify(raised.value) is Disposition.FATAL


@pytest.mark.parametrize("region", ["bad region", "-eu", "eu_west_1", ""])
def test_a_bad_region_is_refused_before_any_request(region: str) -> None:
    with pytest.raises(ConfigError, match="bad region"):
        Connection(endpoint_url="http://127.0.0.1:9", region=region or "x" * 64).open("b")


def test_with_an_endpoint_given_boto3s_client_waits_for_a_request_that_needs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a listing and small requests go through awscrt: making boto3's
    # client (15 MB, 0.1 s) for them would be waste
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    made: list[str] = []

    def make_client(**kwargs: object) -> object:
        made.append(str(kwargs["endpoint_url"]))
        return object()

    monkeypatch.setattr(remote, "make_client", make_client)
    store = Connection(endpoint_url="http://127.0.0.1:9", region="eu-west-1").open("b")
    clients = store._ready()
    assert clients.fast is not None
    assert made == []
    assert store.client is store.client
    assert made == ["http://127.0.0.1:9"]  # once, however often it is asked for


def test_a_no_op_push_with_an_index_loads_nothing_it_does_not_use(tmp_path: Path) -> None:
    """No request, no upload, no digest: none of what those need is loaded (every run
    pays for its imports; these were a tenth of a no-op run with an index)."""
    src = tmp_path / "site"
    (src / "d").mkdir(parents=True)
    for name in ("index.html", "d/a.css"):
        (src / name).write_text(name)
    index_path = tmp_path / "site.idx"
    index = Index.rebuild(str(index_path), Binding("http://127.0.0.1:9", "b", "site/"))
    for name in ("index.html", "d/a.css"):
        info = (src / name).stat()
        index.put(name, Stat(info.st_size, info.st_mtime_ns), '"e"')
    index.commit()
    index.close()
    code = (
        "import s3sync.api\n"
        f"report = s3sync.api.push({str(src)!r}, 's3://b/site', index={str(index_path)!r},\n"
        "    endpoint_url='http://127.0.0.1:9')\n"
        "assert report.exit_code == 0 and report.unchanged == 2, report"
    )
    lazy = ("concurrent.futures", "logging", "hashlib", "json", "traceback", "s3sync.uploading")
    assert loaded(code, (*lazy, "boto3", "botocore", "awscrt", "zlib")) == []
