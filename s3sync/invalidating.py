"""The last step of a push: invalidate the changed paths on CloudFront distributions."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from s3sync.cdn_paths import batches, invalidation_paths
from s3sync.errors import RemoteError
from s3sync.model import Invalidation

if TYPE_CHECKING:
    from s3sync.store.remote import CloudFront


def invalidate(
    cdn: CloudFront,
    distributions: Sequence[str],
    keys: Sequence[str],
    *,
    bucket: str,
    budget: int,
    dry_run: bool,
    on_retry: Callable[[BaseException], None],
    warn: Callable[[str, str], None],
    now: Callable[[], int] = time.time_ns,
) -> list[Invalidation]:
    """Invalidate the paths that serve *keys* (objects updated or deleted) on each of
    *distributions*; return what was done, one Invalidation each (with an error instead
    of ids when a request failed). A dry run reads the distributions but only reports.

    The distribution tells the origin path the bucket is served from; a policy that
    denies reading it leaves keys as paths, with a warning (``warn(distribution, text)``).
    """
    done: list[Invalidation] = []
    for distribution in distributions:
        paths: list[str] = []
        ids: list[str] = []
        try:
            try:
                origin = cdn.origin_path(distribution, bucket)
            except RemoteError as exc:
                if exc.code != "AccessDenied":
                    raise
                warn(distribution, f"{exc}; invalidating the keys as paths (no origin path)")
                origin = ""
            paths = invalidation_paths(keys, origin_path=origin, budget=budget)
            if not dry_run:
                for n, batch in enumerate(batches(paths)):
                    reference = f"s3sync-{now()}-{n}"
                    made = cdn.invalidate(
                        distribution, batch, reference=reference, on_retry=on_retry
                    )
                    ids.append(made)
        except RemoteError as exc:
            done.append(Invalidation(distribution, tuple(paths), tuple(ids), str(exc)))
            continue
        if paths:
            done.append(Invalidation(distribution, tuple(paths), tuple(ids)))
    return done
