"""The public Python API; the CLI is a thin layer over these functions."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence

from s3sync import content_type
from s3sync import push as push_case
from s3sync.errors import classify
from s3sync.model import Outcome, Report
from s3sync.paths import parse_s3_url
from s3sync.progress import CallbackReporter, NullReporter, Reporter
from s3sync.remote import S3Store, make_client
from s3sync.retry import Retrier, RetryPolicy

MIB = 1024 * 1024


def filter_rules(
    include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[tuple[bool, str], ...]:
    """Return ordered filter rules: every include first, then every exclude."""
    return tuple((True, p) for p in include) + tuple((False, p) for p in exclude)


def push(
    src: str,
    dest: str,
    *,
    workers: int = 16,
    fudge: float = 1200.0,
    no_delete: bool = False,
    dry_run: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    filters: Sequence[tuple[bool, str]] | None = None,
    follow_symlinks: bool = True,
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    retries: int = 4,
    multipart_threshold: int = 8 * MIB,
    part_size: int = 8 * MIB,
    progress: Callable[[Outcome], None] | None = None,
    reporter: Reporter | None = None,
    cancel: threading.Event | None = None,
    keep_actions: bool = True,
) -> Report:
    """Mirror the directory *src* to ``s3://BUCKET[/PREFIX]`` *dest*; return the report.

    The keyword arguments are the CLI's options. *filters* (ordered ``(include, glob)``
    pairs) replaces *include*/*exclude*, which apply includes first. *progress* is called
    with every outcome; ``report.outcomes`` keeps them all unless *keep_actions* is
    False. Fatal problems do not raise: ``report.fatal`` says what happened
    and ``report.exit_code`` is 3.
    """
    location = parse_s3_url(dest)
    options = push_case.PushOptions(
        workers=workers,
        fudge=fudge,
        delete=not no_delete,
        dry_run=dry_run,
        filters=tuple(filters) if filters is not None else filter_rules(include, exclude),
        follow_symlinks=follow_symlinks,
    )
    if reporter is None:
        reporter = CallbackReporter(progress) if progress else NullReporter()
    part_workers = max(2, min(workers, 8))
    client = make_client(
        endpoint_url=endpoint_url,
        region=region,
        profile=profile,
        connections=workers + part_workers + 2,
    )
    store = S3Store(
        client,
        location.bucket,
        retrier=Retrier(RetryPolicy(attempts=retries + 1), classify, time.sleep, random.random),
        multipart_threshold=multipart_threshold,
        part_size=part_size,
        part_workers=part_workers,
    )
    try:
        return push_case.run(
            src,
            location,
            store,
            reporter,
            options,
            content_type=content_type.guess,
            cancel=cancel,
            keep_actions=keep_actions,
        )
    finally:
        store.close()
