"""Property: from any starting bucket, one push makes the prefix equal the filtered tree,
a second push does nothing, and a restore reproduces the tree (real server, derandomised)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import s3sync
from tests.conftest import write_tree
from tests.integration.conftest import objects

SEGMENTS = st.sampled_from(["a", "b", "c", "d.txt", "e.html", "f.tmp", "é", "g h"])
PATHS = st.lists(SEGMENTS, min_size=1, max_size=3).map("/".join)
CONTENT = st.binary(max_size=64)
EXCLUDE = ["*.tmp"]


def excluded(path: str) -> bool:
    """The model of ``--exclude '*.tmp'``: a matching directory excludes all below it."""
    return any(segment.endswith(".tmp") for segment in path.split("/"))


def files_only(paths: dict[str, bytes]) -> dict[str, bytes]:
    """Drop paths that would need to be both a file and a directory."""
    return {p: c for p, c in paths.items() if not any(o.startswith(p + "/") for o in paths)}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """A local tree, and the bucket before the push: stale copies of some of its files,
    keys with no file, and excluded keys (which must survive)."""
    tree = files_only(draw(st.dictionaries(PATHS, CONTENT, max_size=12)))
    before: dict[str, bytes] = {}
    for path in draw(st.lists(st.sampled_from(sorted(tree)), unique=True)) if tree else []:
        before[path] = tree[path] + b"!stale"  # another size: an mtime compare must see it
    before.update(draw(st.dictionaries(PATHS, CONTENT, max_size=6)))
    return tree, before


@pytest.fixture
def api_env(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)


@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_push_converges_is_idempotent_and_restores_the_tree(
    scenario: tuple[dict[str, bytes], dict[str, bytes]],
    api_env: None,
    server: Any,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    tree, before = scenario
    run = uuid.uuid4().hex[:8]
    prefix = f"{run}/site"
    for key, body in before.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=body)
    src = write_tree(tmp_path / run / "src", tree, mtime=time.time() - 86400)
    os.makedirs(src, exist_ok=True)
    url = f"s3://{bucket}/{prefix}"
    options = {"endpoint_url": server.endpoint, "exclude": EXCLUDE, "allow_empty_source": True}

    first = s3sync.push(str(src), url, **options)
    second = s3sync.push(str(src), url, **options)
    dest = tmp_path / run / "dest"
    back = s3sync.restore(url, str(dest), **options)

    wanted = {k: v for k, v in tree.items() if not excluded(k)}
    survivors = {k: v for k, v in before.items() if excluded(k)}  # excluded: never deleted
    stored = {k.removeprefix(prefix + "/"): v for k, v in objects(s3, bucket, prefix).items()}
    assert first.exit_code == 0, first.errors
    assert stored == {**survivors, **wanted}
    assert (second.uploaded, second.deleted, second.failed) == (0, 0, 0)
    assert back.exit_code == 0, back.errors
    restored = {
        p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()
    }
    assert restored == wanted
