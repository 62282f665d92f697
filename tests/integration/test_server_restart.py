"""SeaweedFS restarted in the middle of a push: the run recovers or fails cleanly, and a
rerun converges. The test has a server of its own, so the session's is left alone."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_tree
from tests.integration.conftest import cli_env, objects
from tools import seaweed

TREE = {f"d{i % 8}/f{i}.txt": f"file {i}" for i in range(300)}


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[list[seaweed.Server]]:
    """A server for this test only, as a one-item list the test may restart in place."""
    running = [seaweed.start(tmp_path / "weed")]
    yield running
    seaweed.stop(running[0])


def test_push_across_a_server_restart_recovers_or_fails_cleanly_and_converges(
    own_server: list[seaweed.Server], tmp_path: Path
) -> None:
    server = own_server[0]
    s3 = server.client()
    s3.create_bucket(Bucket="site")
    src = write_tree(tmp_path / "src", TREE)
    argv = [sys.executable, "-m", "s3sync", "push", "--json", "-w", "2", "--retries", "8"]
    argv += [str(src), "s3://site", "--endpoint-url", server.endpoint]
    child = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(server), text=True
    )
    assert child.stdout is not None
    for _ in range(20):  # twenty uploads are done: the run is well under way
        assert json.loads(child.stdout.readline())["status"] == "ok"
    own_server[0] = server = seaweed.restart(server)
    out, err = child.communicate(timeout=240)

    assert child.returncode in (0, 1, 3), err  # recovered, some files failed, or stopped
    assert "Traceback" not in err
    summary = json.loads(out.splitlines()[-1])
    assert summary["type"] == "summary" and summary["retries"] >= 1
    want = {k: v.encode() for k, v in TREE.items()}
    assert all(want[k] == v for k, v in objects(s3, "site").items())  # whole or absent

    rerun = subprocess.run(argv, capture_output=True, text=True, env=cli_env(server))
    assert rerun.returncode == 0, rerun.stderr
    assert objects(s3, "site") == want
    assert not s3.list_multipart_uploads(Bucket="site").get("Uploads")
