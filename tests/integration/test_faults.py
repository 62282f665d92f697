"""Every command under every network fault: a correct result or the documented exit code,
never a corrupted object or a partial file, and a rerun that converges.

The proxy faults the first attempt of every other distinct request (so each retry gets
through and the run must end correct), or every attempt of the transfers (so the run
must fail cleanly). Listing, parts, completion and deletes are all among the requests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_tree
from tests.integration.conftest import Run, cli_env, keys, objects
from tests.integration.proxy import (
    INTERNAL,
    SLOW_DOWN,
    Fault,
    Reset,
    Rule,
    Silence,
    Truncate,
    fault_proxy,
)

MIB = 1024 * 1024
PARTS = ("--multipart-threshold", "5MiB", "--part-size", "5MiB")

FAULTS: dict[str, Fault] = {
    "slowdown": SLOW_DOWN,
    "internal-error": INTERNAL,
    "reset": Reset(),
    "dropped-after-apply": Reset(applied=True),
    "stalled": Silence(),
    "truncated": Truncate(after=20),
}

TREE: dict[str, bytes | str] = {
    "index.html": "<html>home</html>",
    "a/one.txt": "one",
    "a/two.txt": "two, longer",
    "a/b/three.css": "body{}",
    "empty.txt": b"",
    "big.bin": os.urandom(11 * MIB),  # three parts
}


def every_other_first_attempt(fault: Fault) -> Rule:
    """Fault the first attempt of every other distinct request; retries pass."""
    seen: set[tuple[str, str]] = set()

    def rule(method: str, path: str, _n: int) -> Fault | None:
        if (method, path) in seen:
            return None
        seen.add((method, path))
        return fault if len(seen) % 2 == 1 else None

    return rule


def transfers_always(fault: Fault) -> Rule:
    """Fault every attempt to move object data (not listings)."""

    def rule(method: str, path: str, _n: int) -> Fault | None:
        listing = method == "GET" and ("list-type" in path or "uploads" in path)
        return None if listing or method == "HEAD" else fault

    return rule


def local_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def expected() -> dict[str, bytes]:
    return {k: v.encode() if isinstance(v, str) else v for k, v in TREE.items()}


Extra = tuple[str, ...]
PATIENT: Extra = ("--retries", "6", "--timeout", "2")
HOPELESS: Extra = ("--retries", "1", "--timeout", "2")


@dataclass(frozen=True)
class Case:
    """One command set up on a fresh bucket: how to run it, and what it must produce."""

    run: Callable[[str, Extra], Run]  # (endpoint, extra options) -> the run
    result: Callable[[], dict[str, bytes]]  # what the destination holds now
    want: dict[str, bytes]
    pristine: Callable[[], bool]  # no mixed object, no partial file under a real name
    verb: str | None  # the summary's count of transfers (None: no --json summary)


def push_case(cli: Any, s3: Any, bucket: str, tmp: Path) -> Case:
    src = write_tree(tmp / "src", TREE)
    s3.put_object(Bucket=bucket, Key="site/stale.txt", Body=b"to be deleted")
    s3.put_object(Bucket=bucket, Key="site/a/one.txt", Body=b"an older, longer version")
    old = {"stale.txt": b"to be deleted", "a/one.txt": b"an older, longer version"}

    def result() -> dict[str, bytes]:
        return {k.removeprefix("site/"): v for k, v in objects(s3, bucket, "site/").items()}

    def pristine() -> bool:  # every object is the old or the new version, never a mix
        return all(v in (expected().get(k), old.get(k)) for k, v in result().items())

    def run(endpoint: str, extra: Extra) -> Run:
        result: Run = cli(
            "push", *PARTS, *extra, "--json", src, f"s3://{bucket}/site", endpoint=endpoint
        )
        return result

    return Case(run, result, expected(), pristine, "uploaded")


def restore_case(cli: Any, s3: Any, bucket: str, tmp: Path) -> Case:
    src = write_tree(tmp / "src", TREE)
    assert cli("push", *PARTS, src, f"s3://{bucket}/site").code == 0
    dest = tmp / "dest"
    want = expected()

    def result() -> dict[str, bytes]:
        return local_files(dest) if dest.exists() else {}

    def run(endpoint: str, extra: Extra) -> Run:
        result: Run = cli(
            "restore", *extra, "--json", f"s3://{bucket}/site", dest, "--endpoint-url", endpoint
        )
        return result

    # a file is whole or absent: the partial ones are temp files, and none survives a run
    return Case(
        run, result, want, lambda: all(want.get(k) == v for k, v in result().items()), "downloaded"
    )


def copy_case(cli: Any, s3: Any, bucket: str, tmp: Path) -> Case:
    src = write_tree(tmp / "src", TREE)
    assert cli("push", *PARTS, src, f"s3://{bucket}/from").code == 0
    want = expected()

    def result() -> dict[str, bytes]:
        return {k.removeprefix("to/"): v for k, v in objects(s3, bucket, "to/").items()}

    def run(endpoint: str, extra: Extra) -> Run:
        result: Run = cli(
            "copy",
            *PARTS,
            *extra,
            "--json",
            f"s3://{bucket}/from/*",
            f"s3://{bucket}/to",
            "--endpoint-url",
            endpoint,
        )
        return result

    return Case(
        run, result, want, lambda: all(want.get(k) == v for k, v in result().items()), "copied"
    )


def pipe_case(cli: Any, s3: Any, bucket: str, tmp: Path) -> Case:
    data = os.urandom(12 * MIB)

    def result() -> dict[str, bytes]:
        return objects(s3, bucket)

    def run(endpoint: str, extra: Extra) -> Run:
        result: Run = cli(
            "pipe",
            "--part-size",
            "5MiB",
            *extra,
            f"s3://{bucket}/stream.bin",
            "--endpoint-url",
            endpoint,
            stdin=data,
        )
        return result

    return Case(
        run, result, {"stream.bin": data}, lambda: result() in ({}, {"stream.bin": data}), None
    )


CASES = {"push": push_case, "restore": restore_case, "copy": copy_case, "pipe": pipe_case}
# what a run whose transfers all fail exits with (README "Exit codes")
FAILED_EXIT = {"push": 1, "restore": 1, "copy": 1, "pipe": 1}


def no_uploads_left(s3: Any, bucket: str) -> bool:
    return not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def assert_converges(case: Case, endpoint: str, s3: Any, bucket: str) -> None:
    """A plain rerun ends with exactly the expected state and no multipart upload left."""
    again = case.run(endpoint, ())
    assert again.code == 0, again.err
    assert case.result() == case.want
    assert no_uploads_left(s3, bucket)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("command", CASES)
def test_intermittent_faults_are_retried_to_a_correct_result(
    command: str, fault: str, cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    check_retried(CASES[command](cli, s3, bucket, tmp_path), fault, server, s3, bucket)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("command", ["push", "restore"])
def test_without_awscrt_transfers_are_retried_to_a_correct_result_too(
    command: str, fault: str, cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    """Small objects go through awscrt (or the lean GET client) when they can; through
    botocore otherwise."""

    def botocore_cli(*args: Any, **kwargs: Any) -> Run:
        env = cli_env(server, S3SYNC_CRT="0")
        done: Run = cli(*args, env=env, **kwargs)
        return done

    case = CASES[command](botocore_cli, s3, bucket, tmp_path)
    check_retried(case, fault, server, s3, bucket)


@pytest.mark.parametrize("fault", FAULTS)
def test_downloads_through_awscrt_are_retried_to_a_correct_result_too(
    fault: str, cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    """From an https endpoint small objects come down through awscrt, not the lean
    client: the same faults, on that path."""

    def crt_cli(*args: Any, **kwargs: Any) -> Run:
        done: Run = cli(*args, env=cli_env(server), **kwargs)
        return done

    check_retried(restore_case(crt_cli, s3, bucket, tmp_path), fault, server, s3, bucket)


def check_retried(case: Case, fault: str, server: Any, s3: Any, bucket: str) -> None:
    """Run *case* with *fault* on every other first attempt: a correct, converged end."""
    with fault_proxy(server.endpoint, every_other_first_attempt(FAULTS[fault])) as proxy:
        run = case.run(proxy.endpoint, PATIENT)
    assert run.code == 0, run.err
    assert case.result() == case.want
    assert proxy.faulted(), "the rule faulted nothing: the test would prove nothing"
    assert no_uploads_left(s3, bucket)
    if case.verb is not None:
        assert run.summary()["retries"] >= 1
        rerun = case.run(server.endpoint, ())
        assert rerun.code == 0, rerun.err
        assert (rerun.summary()[case.verb], rerun.summary()["deleted"]) == (0, 0)
    assert_converges(case, server.endpoint, s3, bucket)


@pytest.mark.parametrize("fault", ["internal-error", "reset", "dropped-after-apply"])
@pytest.mark.parametrize("command", CASES)
def test_persistent_faults_fail_cleanly_and_the_rerun_converges(
    command: str, fault: str, cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    case = CASES[command](cli, s3, bucket, tmp_path)
    with fault_proxy(server.endpoint, transfers_always(FAULTS[fault])) as proxy:
        run = case.run(proxy.endpoint, HOPELESS)
    assert run.code == FAILED_EXIT[command], run.err
    assert "Traceback" not in run.err
    assert case.pristine()
    if command == "push":  # nothing is deleted after an error
        assert "site/stale.txt" in keys(s3, bucket)
    assert_converges(case, server.endpoint, s3, bucket)


NO_SUCH_UPLOAD = (
    404,
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code>'
    b"<Message>The specified upload does not exist.</Message></Error>",
)
MULTIPART_STEPS: dict[str, Callable[[str, str], bool]] = {
    "create": lambda method, path: method == "POST" and path.endswith("?uploads"),
    "part": lambda method, path: method == "PUT" and "partNumber=" in path,
    "complete": lambda method, path: method == "POST" and "uploadId=" in path,
}


@pytest.mark.parametrize("step", [*MULTIPART_STEPS, "complete-forgotten"])
def test_a_multipart_step_applied_but_unheard_still_ends_in_one_whole_object(
    step: str, cli: Any, s3: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    case = push_case(cli, s3, bucket, tmp_path)
    dropped: list[str] = []

    def rule(method: str, path: str, _n: int) -> Fault | None:
        if not MULTIPART_STEPS[step.removesuffix("-forgotten")](method, path):
            return None
        dropped.append(path)
        if len(dropped) == 1:
            return Reset(applied=True)
        # AWS may forget a completed upload: the retry is told it does not exist
        return NO_SUCH_UPLOAD if step == "complete-forgotten" and len(dropped) == 2 else None

    with fault_proxy(server.endpoint, rule) as proxy:
        run = case.run(proxy.endpoint, PATIENT)
    assert dropped, "no request of that step went through the proxy"
    assert run.code == 0, run.err
    assert case.result() == case.want
    assert no_uploads_left(s3, bucket)


@pytest.mark.parametrize(("crt", "agent"), [("1", "CRTS3NativeClient"), ("0", "Boto3")])
def test_small_files_go_up_through_awscrt_unless_turned_off(
    crt: str, agent: str, cli: Any, server: Any, bucket: str, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", {"a.txt": "a", "b/c.css": "c"})
    with fault_proxy(server.endpoint, lambda m, p, n: None) as proxy:
        env = cli_env(server, S3SYNC_CRT=crt)
        run = cli("push", src, f"s3://{bucket}", env=env, endpoint=proxy.endpoint)
        puts = [dict(s.headers) for s in proxy.seen if s.method == "PUT"]
    assert run.code == 0, run.err
    agents = [next(v for k, v in h.items() if k.lower() == "user-agent") for h in puts]
    assert len(agents) == 2 and all(agent.lower() in a.lower() for a in agents), agents
