"""Which CloudFront paths to invalidate for the keys a push changed, within a budget.

CloudFront charges per path after the first 1,000 a month, and a wildcard counts as one
path; at most 15 wildcard paths (3,000 plain ones) may be in progress per distribution.
So the paths of changed keys collapse into directory wildcards, from the deepest level
up, until no more than the budget remain; ``/*`` is the last resort.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from urllib.parse import quote

INDEX = "index.html"
DEFAULT_BUDGET = 8
BATCH_PATHS = 1000  # paths per invalidation request
BATCH_WILDCARDS = 15  # wildcard paths CloudFront lets be in progress at once
# RFC 1738's safe and reserved characters stay as they are; the rest is %-encoded (as
# CloudFront asks), "*" too: in a key it is a character, not a wildcard
_KEEP = "/$-_.+!'(),;:@=&"


def served_path(key: str, origin_path: str) -> str | None:
    """Return the path CloudFront serves *key* under, for an origin reading from
    *origin_path* (``/site`` or ``''``); None when the origin does not reach the key."""
    root = origin_path.strip("/")
    if root:
        if not key.startswith(root + "/"):
            return None
        key = key[len(root) + 1 :]
    return "/" + quote(key, safe=_KEEP)


def invalidation_paths(
    keys: Iterable[str], *, origin_path: str = "", budget: int = DEFAULT_BUDGET
) -> list[str]:
    """Return the sorted paths that invalidate every key of *keys*: ``dir/index.html``
    also as ``dir/``, collapsed to wildcards when there are more than *budget*."""
    paths: set[str] = set()
    for key in keys:
        path = served_path(key, origin_path)
        if path is None:
            continue
        paths.add(path)
        if path.endswith("/" + INDEX):
            paths.add(path[: -len(INDEX)])
    return collapse(paths, max(1, budget))


def _dirs(path: str) -> list[str]:
    """Return the directory parts of *path* (``/a/b/c.html`` and ``/a/b/``: a, b)."""
    inner = path.strip("/")
    parts = inner.split("/") if inner else []
    return parts if path.endswith("/") else parts[:-1]


def collapse(paths: Iterable[str], budget: int) -> list[str]:
    """Return at most *budget* sorted paths covering *paths*: every path at least *level*
    directories deep becomes its first *level* directories plus ``/*``, with *level*
    going from the deepest up; ``["/*"]`` when nothing else fits."""
    current = sorted(set(paths))
    if len(current) <= budget:
        return current
    deepest = max(len(_dirs(p)) for p in current)
    for level in range(deepest, 0, -1):
        reduced: set[str] = set()
        for path in current:
            parts = _dirs(path)
            reduced.add("/" + "/".join(parts[:level]) + "/*" if len(parts) >= level else path)
        if len(reduced) <= budget:
            return _without_covered(reduced)
    return ["/*"]


def _without_covered(paths: set[str]) -> list[str]:
    """Return *paths* without those a wildcard among them already covers."""
    wildcards = [p[:-1] for p in paths if p.endswith("/*")]
    return sorted(
        p
        for p in paths
        if p.endswith("/*") or not any(p.startswith(w) and p != w + "*" for w in wildcards)
    )


def batches(paths: list[str]) -> Iterator[list[str]]:
    """Split *paths* into requests CloudFront accepts while others are in progress."""
    batch: list[str] = []
    wildcards = 0
    for path in paths:
        wild = path.endswith("*")
        if len(batch) == BATCH_PATHS or (wild and wildcards == BATCH_WILDCARDS):
            yield batch
            batch, wildcards = [], 0
        batch.append(path)
        wildcards += wild
    if batch:
        yield batch
