"""Against the real server: the fanned-out listing yields every key exactly once,
whatever the keys (those that sort between directories included), with pages small
enough that every listing, delimited or not, runs to several, on both paths."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3sync.store.remote import Connection
from tests.integration.conftest import cli_env

pytestmark = pytest.mark.integration

SEGMENT = st.sampled_from(["a", "a-b", "a.b", "a0", "b", "é", "x y", "-", "z~"])
KEY = st.lists(SEGMENT, min_size=1, max_size=3).map("/".join)


@pytest.mark.parametrize("crt", ["1", "0"])
@settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(keys=st.sets(KEY, min_size=1, max_size=30), prefix=st.sampled_from(["", "a", "a/"]))
def test_every_key_is_listed_exactly_once(
    crt: str,
    keys: set[str],
    prefix: str,
    s3: Any,
    server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in cli_env(server, S3SYNC_CRT=crt).items():
        monkeypatch.setenv(name, value)
    bucket = f"f-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=bucket)
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    store = Connection(endpoint_url=server.endpoint).open(bucket)
    store.page_keys = 2  # every listing runs to pages
    store.listing_ways = 3
    listed = Counter(
        key for page in store.list_pages(prefix, on_retry=lambda _e: None) for key, _ in page
    )
    assert listed == Counter(k for k in keys if k.startswith(prefix))
