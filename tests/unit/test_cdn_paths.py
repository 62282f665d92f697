"""CloudFront paths for changed keys: index pages as directories, wildcards over budget."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from s3sync.cdn_paths import batches, collapse, invalidation_paths, served_path


def test_keys_become_quoted_paths_under_the_origin_path() -> None:
    assert served_path("a b/ü*?.html", "") == "/a%20b/%C3%BC%2A%3F.html"
    assert served_path("site/x.css", "/site") == "/x.css"
    assert served_path("other/x.css", "/site") is None  # this origin never serves it
    assert invalidation_paths(["site/blog/index.html", "site/index.html"], origin_path="/site") == [
        "/",
        "/blog/",
        "/blog/index.html",
        "/index.html",
    ]


def test_within_the_budget_every_path_is_kept() -> None:
    keys = ["a.css", "b/c.js", "b/index.html"]
    assert invalidation_paths(keys, budget=4) == ["/a.css", "/b/", "/b/c.js", "/b/index.html"]


def test_over_the_budget_the_deepest_levels_collapse_first() -> None:
    # s3deploy's examples, with a budget of 5
    css = [f"css/f{i}.css" for i in range(20)]
    assert invalidation_paths(["index.html", "styles.css", *css], budget=5) == [
        "/",
        "/css/*",
        "/index.html",
        "/styles.css",
    ]
    spread = [
        "styles.css",
        "index.html",
        *(f"blog/l1/l2/p{i}.html" for i in range(5)),
        *(f"blog/l1/p{i}.html" for i in range(3)),
        *(f"about/l1/p{i}.html" for i in range(3)),
    ]
    assert invalidation_paths(spread, budget=5) == [  # as specific as the budget allows
        "/",
        "/about/l1/*",
        "/blog/l1/*",
        "/index.html",
        "/styles.css",
    ]
    assert invalidation_paths(spread, budget=4) == ["/*"]  # the top level still has 5
    assert invalidation_paths(spread[2:], budget=2) == ["/about/l1/*", "/blog/l1/*"]
    wide = ["blog/a/x", "blog/b/y", "blog/c/z", "about/d/w"]
    assert invalidation_paths(wide, budget=2) == ["/about/*", "/blog/*"]
    assert invalidation_paths([f"d{i}/x.js" for i in range(20)], budget=5) == ["/*"]


def test_a_wildcard_swallows_the_directory_path_it_covers() -> None:
    keys = ["docs/index.html", *(f"docs/p{i}.html" for i in range(9))]
    assert invalidation_paths(keys, budget=8) == ["/docs/*"]


@given(
    st.lists(
        st.lists(st.sampled_from(["a", "b", "c", "index.html"]), min_size=1, max_size=4).map(
            "/".join
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(min_value=1, max_value=10),
)
def test_collapsed_paths_fit_the_budget_and_cover_every_path(keys: list[str], budget: int) -> None:
    full = invalidation_paths(keys, budget=10**6)
    short = collapse(full, budget)
    assert len(short) <= budget
    for path in full:
        assert any(p == path or (p.endswith("*") and path.startswith(p[:-1])) for p in short)


def test_batches_respect_the_limits_of_requests_in_progress() -> None:
    paths = [f"/d{i}/*" for i in range(40)] + [f"/f{i}" for i in range(2500)]
    split = list(batches(paths))
    assert list(itertools.chain(*split)) == paths
    assert all(len(b) <= 1000 and sum(p.endswith("*") for p in b) <= 15 for b in split)
