"""push --cloudfront: the real CLI against SeaweedFS for S3 and moto's CloudFront (the one
AWS service with no local server), both on loopback."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import Tree
from tests.integration.conftest import Run, cli_env
from tests.integration.proxy import INTERNAL, Fault, Seen, fault_proxy


@pytest.fixture(scope="module")
def cloudfront_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def cloudfront(cloudfront_endpoint: str, server: Any) -> Any:
    return boto3.client(
        "cloudfront",
        endpoint_url=cloudfront_endpoint,
        region_name="us-east-1",
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
    )


def distribution(cloudfront: Any, bucket: str, origin_path: str = "") -> str:
    origin = {"Id": "site", "DomainName": f"{bucket}.s3.amazonaws.com", "OriginPath": origin_path}
    origin["S3OriginConfig"] = {"OriginAccessIdentity": ""}  # type: ignore[assignment]
    config = {
        "CallerReference": uuid.uuid4().hex,
        "Comment": "",
        "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "site",
            "ViewerProtocolPolicy": "allow-all",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
        },
    }
    made = cloudfront.create_distribution(DistributionConfig=config)
    return str(made["Distribution"]["Id"])


def invalidated(cloudfront: Any, dist: str) -> list[list[str]]:
    listed = cloudfront.list_invalidations(DistributionId=dist)["InvalidationList"]
    found = []
    for item in listed.get("Items", []):
        got = cloudfront.get_invalidation(DistributionId=dist, Id=item["Id"])
        found.append(sorted(got["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]))
    return found


SITE = {
    "index.html": "<p>home</p>",
    "blog/index.html": "<p>blog</p>",
    "blog/post.html": "<p>post</p>",
    "css/site.css": "body{}",
    "img/logo.png": "png",
    "old.html": "<p>old</p>",
}


@pytest.fixture
def push(cli: Any, server: Any, cloudfront_endpoint: str, bucket: str) -> Any:
    env = cli_env(server, AWS_ENDPOINT_URL_CLOUDFRONT=cloudfront_endpoint)

    def run(src: Path, *args: str, dest: str = "", endpoint: str | None = None) -> Run:
        result: Run = cli(
            "push", "--json", *args, src, f"s3://{bucket}/{dest}", env=env, endpoint=endpoint
        )
        return result

    return run


def change_site(src: Path) -> None:
    later = time.time() + 10
    for rel in ("index.html", "blog/index.html", "css/site.css"):
        (src / rel).write_text((src / rel).read_text() + " changed")
        os.utime(src / rel, (later, later))
    (src / "old.html").unlink(missing_ok=True)
    (src / "new.html").write_text(f"<p>new {later}</p>")


def test_updated_and_deleted_paths_are_invalidated_after_the_push(
    push: Any, cloudfront: Any, bucket: str, tree: Tree
) -> None:
    src = tree(SITE)
    dist = distribution(cloudfront, bucket)
    first = push(src, "--cloudfront", dist)
    assert first.code == 0, first.err
    assert invalidated(cloudfront, dist) == []  # everything was new: nothing was cached
    assert first.summary()["invalidations"] == []
    change_site(src)

    run = push(src, "--cloudfront", dist)

    assert run.code == 0, run.err
    expected = ["/", "/blog/", "/blog/index.html", "/css/site.css", "/index.html", "/old.html"]
    assert invalidated(cloudfront, dist) == [expected]  # not /new.html: it was never served
    (made,) = run.summary()["invalidations"]
    assert (made["distribution"], made["paths"], made["error"]) == (dist, expected, None)
    assert len(made["ids"]) == 1


def test_the_origin_path_is_taken_off_and_over_the_budget_paths_collapse(
    push: Any, cloudfront: Any, bucket: str, tree: Tree
) -> None:
    src = tree(SITE)
    dist = distribution(cloudfront, bucket, origin_path="/www")
    assert push(src, dest="www").code == 0
    change_site(src)
    exact = push(src, "--cloudfront", dist, dest="www")
    change_site(src)

    collapsed = push(src, "--cloudfront", dist, "--invalidation-budget", "5", dest="www")

    assert exact.code == 0 and collapsed.code == 0, collapsed.err
    assert exact.summary()["invalidations"][0]["paths"] == [
        "/",
        "/blog/",
        "/blog/index.html",
        "/css/site.css",
        "/index.html",
        "/old.html",
    ]
    # the second time new.html was there before, and old.html is long gone
    assert collapsed.summary()["invalidations"][0]["paths"] == [
        "/",
        "/blog/*",
        "/css/*",
        "/index.html",
        "/new.html",
    ]
    assert len(invalidated(cloudfront, dist)) == 2


def test_a_dry_run_prints_the_paths_and_invalidates_nothing(
    push: Any, cloudfront: Any, bucket: str, tree: Tree
) -> None:
    src = tree(SITE)
    dist = distribution(cloudfront, bucket)
    assert push(src).code == 0
    change_site(src)

    dry = push(src, "-n", "--cloudfront", dist)

    assert dry.code == 0, dry.err
    assert invalidated(cloudfront, dist) == []
    assert dry.summary()["invalidations"][0]["paths"][:2] == ["/", "/blog/"]
    assert dry.summary()["invalidations"][0]["ids"] == []


def test_no_invalidation_after_a_failed_push(
    push: Any, cloudfront: Any, server: Any, bucket: str, tree: Tree
) -> None:
    src = tree(SITE)
    dist = distribution(cloudfront, bucket)
    assert push(src).code == 0
    change_site(src)

    def fail_css(method: str, path: str, _n: int) -> Fault | None:
        return INTERNAL if method == "PUT" and path.endswith("site.css") else None

    with fault_proxy(server.endpoint, fail_css) as proxy:
        run = push(src, "--cloudfront", dist, "--retries", "0", endpoint=proxy.endpoint)

    assert run.code == 1, run.err
    assert invalidated(cloudfront, dist) == []
    assert run.summary()["invalidations"] == []


def test_a_missing_distribution_is_an_error_after_the_push_with_exit_1(
    push: Any, cloudfront: Any, bucket: str, tree: Tree
) -> None:
    src = tree(SITE)
    assert push(src).code == 0
    change_site(src)

    run = push(src, "--cloudfront", "ENOSUCHDIST")

    assert run.code == 1
    assert run.summary()["uploaded"] == 4  # the push itself went through
    (made,) = run.summary()["invalidations"]
    assert made["error"] and "ENOSUCHDIST" in made["error"]
    assert "error: ENOSUCHDIST:" in run.err and run.err.count("\n") == 1, run.err


def push_past(
    cli: Any, server: Any, endpoint: str, rule: Any, flag: str, dist: str, src: Path, bucket: str
) -> tuple[Run, list[Seen]]:
    """Push with CloudFront reached through a fault proxy applying *rule*."""
    with fault_proxy(endpoint, rule) as proxy:
        env = cli_env(server, AWS_ENDPOINT_URL_CLOUDFRONT=proxy.endpoint)
        run: Run = cli("push", flag, "--cloudfront", dist, src, f"s3://{bucket}", env=env)
        return run, list(proxy.seen)


BUSY = (
    400,
    b'<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type>'
    b"<Code>TooManyInvalidationsInProgress</Code>"
    b"<Message>Your request contains too many invalidations.</Message></Error></ErrorResponse>",
)


@pytest.fixture
def published(cli: Any, cloudfront: Any, bucket: str, tree: Tree) -> tuple[Path, str]:
    """Return a site pushed once and then changed, and a distribution serving it."""
    src = tree(SITE)
    dist = distribution(cloudfront, bucket)
    assert cli("push", src, f"s3://{bucket}").code == 0
    change_site(src)
    return src, dist


def test_too_many_invalidations_in_progress_is_waited_out(
    cli: Any,
    server: Any,
    cloudfront: Any,
    cloudfront_endpoint: str,
    bucket: str,
    published: tuple[Path, str],
) -> None:
    src, dist = published

    creates_seen: list[str] = []

    def busy_once(method: str, path: str, _n: int) -> Fault | None:
        if method != "POST" or not path.endswith("/invalidation"):
            return None
        creates_seen.append(path)
        return BUSY if len(creates_seen) == 1 else None

    run, seen = push_past(cli, server, cloudfront_endpoint, busy_once, "--json", dist, src, bucket)
    creates = [s for s in seen if s.method == "POST"]

    assert run.code == 0, run.err
    assert [c.faulted for c in creates] == [True, False]
    assert len(invalidated(cloudfront, dist)) == 1
    assert run.summary()["retries"] == 1


DENIED = (
    403,
    b'<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>'
    b"<Message>User is not authorized to perform: cloudfront:GetDistribution</Message>"
    b"</Error></ErrorResponse>",
)


def test_a_policy_that_only_allows_invalidations_still_gets_them_with_a_warning(
    cli: Any,
    server: Any,
    cloudfront: Any,
    cloudfront_endpoint: str,
    bucket: str,
    published: tuple[Path, str],
) -> None:
    src, dist = published

    def deny_reading(method: str, _path: str, _n: int) -> Fault | None:
        return DENIED if method == "GET" else None

    run, _ = push_past(cli, server, cloudfront_endpoint, deny_reading, "-v", dist, src, bucket)

    assert run.code == 0, run.err
    assert f"warning: {dist}: " in run.err and "GetDistribution" in run.err
    assert len(invalidated(cloudfront, dist)) == 1
    assert f"invalidated on {dist} (" in run.out
