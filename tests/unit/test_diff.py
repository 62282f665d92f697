"""The change rule (a truth table) and the matcher (properties over random trees)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3sync.diff import (
    NS,
    Compare,
    Matcher,
    Rule,
    exact_reason,
    fudge_rule,
    push_pair,
    push_rule,
    restore_reason,
    upload_reason,
)
from s3sync.filters import Filter
from s3sync.model import Delete, Reason, Stat, Upload

T = 1_700_000_000 * NS  # a fixed instant
FUDGE = 1200.0


@pytest.mark.parametrize(
    ("local", "remote", "expected"),
    [
        (Stat(10, T), None, Reason.NEW),
        (Stat(11, T - 5000 * NS), Stat(10, T), Reason.SIZE),
        (Stat(10, T - 1201 * NS), Stat(10, T), None),  # older than LastModified - fudge
        (Stat(10, T - 1200 * NS), Stat(10, T), None),  # exactly at the edge: not later
        # a file of the object's size written later is ambiguous: a worker compares bytes
        (Stat(10, T - 1200 * NS + 1), Stat(10, T), Reason.UNVERIFIED),  # one ns later
        (Stat(10, T - 60 * NS), Stat(10, T), Reason.UNVERIFIED),  # written just before upload
        (Stat(10, T + 60 * NS), Stat(10, T), Reason.UNVERIFIED),  # written after upload
        (Stat(0, T - 9999 * NS), Stat(0, T), None),  # empty files compare like any other
    ],
)
def test_change_rule(local: Stat, remote: Stat | None, expected: Reason | None) -> None:
    assert upload_reason(local, remote, fudge=FUDGE) is expected


def test_fudge_zero_compares_against_last_modified_itself() -> None:
    assert upload_reason(Stat(1, T), Stat(1, T), fudge=0) is None
    assert upload_reason(Stat(1, T + 1), Stat(1, T), fudge=0) is Reason.UNVERIFIED


def plan(
    local: dict[str, Stat],
    remote: dict[str, Stat],
    *,
    fudge: float = FUDGE,
    local_first: bool = True,
    filters: Filter | None = None,
) -> tuple[dict[str, Reason], set[str]]:
    """Run the matcher over both sides (in either order); return uploads and deletes."""
    filters = filters or Filter()
    matcher: Matcher[Upload] = Matcher(push_pair(lambda rel: "pre/" + rel, fudge_rule(fudge)))
    uploads: list[Upload] = []
    local_items = [(k, v) for k, v in local.items() if filters.included(k)]
    remote_items = [(k, v) for k, v in remote.items() if filters.included(k)]
    feeds = [(matcher.local, local_items), (matcher.remote, remote_items)]
    for feed, items in feeds if local_first else reversed(feeds):
        for rel, stat in items:
            found = feed(rel, stat)
            if found is not None:
                uploads.append(found)
    uploads.extend(
        Upload("pre/" + rel, rel, stat, Reason.NEW) for rel, stat in matcher.local_leftovers()
    )
    deletes = [Delete("pre/" + rel) for rel, _ in matcher.remote_leftovers()]
    assert all(u.key == "pre/" + u.path for u in uploads)
    return {u.path: u.reason for u in uploads}, {d.key.removeprefix("pre/") for d in deletes}


def test_matcher_table() -> None:
    local = {"same": Stat(1, T - 3600 * NS), "grown": Stat(5, T), "new": Stat(1, T)}
    remote = {"same": Stat(1, T), "grown": Stat(4, T), "gone": Stat(1, T)}

    for local_first in (True, False):
        uploads, deletes = plan(local, remote, local_first=local_first)
        assert uploads == {"grown": Reason.SIZE, "new": Reason.NEW}
        assert deletes == {"gone"}


def test_matched_pairs_do_not_pile_up() -> None:
    matcher: Matcher[Upload] = Matcher(push_pair(str, fudge_rule(FUDGE)))
    for i in range(1000):
        matcher.remote(f"f{i}", Stat(1, T))
        matcher.local(f"f{i}", Stat(1, T - 3600 * NS))
    assert matcher.pending() == 0 and matcher.unchanged == 1000


def test_protected_paths_and_everything_below_are_never_deleted() -> None:
    matcher: Matcher[Upload] = Matcher(push_pair(str, fudge_rule(FUDGE)))
    for rel in ("link", "link/a", "link/b/c", "linked", "other"):
        matcher.remote(rel, Stat(1, T))
    matcher.protect("link")
    leftovers = [rel for rel, _ in matcher.remote_leftovers()]
    assert [rel for rel in leftovers if not matcher.is_protected(rel)] == ["linked", "other"]


names = st.text(alphabet="abc/", min_size=1, max_size=6).filter(
    lambda s: "//" not in s and not s.startswith("/") and not s.endswith("/")
)
seconds = st.integers(min_value=1_600_000_000, max_value=1_700_000_000)
stats = st.builds(lambda size, sec: Stat(size, sec * NS), st.integers(0, 3), seconds)
sides = st.dictionaries(names, stats, max_size=12)


def apply_plan(local: dict[str, Stat], remote: dict[str, Stat], now: int) -> dict[str, Stat]:
    """Return the remote side after performing the plan at time *now* (LastModified)."""
    uploads, deletes = plan(local, remote)
    after = {k: v for k, v in remote.items() if k not in deletes}
    after.update({rel: Stat(local[rel].size, now) for rel in uploads})
    return after


@settings(derandomize=True, max_examples=300)
@given(sides, sides, st.booleans())
def test_planning_again_after_applying_yields_nothing(
    local: dict[str, Stat], remote: dict[str, Stat], local_first: bool
) -> None:
    # every file was last edited more than the fudge before this run
    now = 1_700_000_000 * NS + int(FUDGE * NS) + NS
    after = apply_plan(local, remote, now)
    assert plan(local, after, local_first=local_first) == ({}, set())
    assert set(after) == set(local)


@settings(derandomize=True, max_examples=200)
@given(sides)
def test_identical_sides_give_an_empty_plan(side: dict[str, Stat]) -> None:
    # the remote holds the same sizes, uploaded well after the files were written
    uploaded = {k: Stat(v.size, v.mtime_ns + int(FUDGE * NS) + NS) for k, v in side.items()}
    assert plan(side, uploaded) == ({}, set())


@settings(derandomize=True, max_examples=300)
@given(sides, sides, st.sampled_from(["a", "b*", "a/", "/b", "**/c", "c/**"]))
def test_deletes_never_include_excluded_keys(
    local: dict[str, Stat], remote: dict[str, Stat], pattern: str
) -> None:
    filters = Filter([(False, pattern)])
    _, deletes = plan(local, remote, filters=filters)
    assert all(filters.included(rel) for rel in deletes)
    assert deletes <= set(remote) - set(local)


@settings(derandomize=True, max_examples=300)
@given(sides, sides, st.floats(0, 5000), st.floats(0, 5000))
def test_a_larger_fudge_never_uploads_less(
    local: dict[str, Stat], remote: dict[str, Stat], a: float, b: float
) -> None:
    small, large = sorted((a, b))
    assert set(plan(local, remote, fudge=small)[0]) <= set(plan(local, remote, fudge=large)[0])


@pytest.mark.parametrize(
    ("local", "recorded", "expected"),
    [
        (Stat(10, T), None, Reason.NEW),
        (Stat(10, T), Stat(10, T), None),
        (Stat(11, T), Stat(10, T), Reason.SIZE),
        (Stat(10, T + 1), Stat(10, T), Reason.UNVERIFIED),  # another mtime: the bytes tell
        (Stat(10, T - 1), Stat(10, T), Reason.UNVERIFIED),  # older too (a restored file)
    ],
)
def test_exact_rule_of_the_index(
    local: Stat, recorded: Stat | None, expected: Reason | None
) -> None:
    assert exact_reason(local, recorded) is expected


def test_unchanged_pairs_are_reported_with_the_local_stat() -> None:
    seen: list[tuple[str, Stat]] = []
    matcher: Matcher[Upload] = Matcher(
        push_pair(str, exact_reason, lambda rel, st: seen.append((rel, st)))
    )
    matcher.remote("a", Stat(1, T))
    matcher.local("a", Stat(1, T))
    changed = matcher.local("b", Stat(2, T))
    assert changed is None  # not seen remotely yet
    matcher.remote("b", Stat(1, T))
    assert seen == [("a", Stat(1, T))]
    matcher.remote("c", Stat(3, T))
    assert list(matcher.local_leftovers()) == []
    assert matcher.remote_leftovers() == [("c", Stat(3, T))]


def test_once_one_side_has_ended_an_entry_alone_on_the_other_is_new_at_once() -> None:
    def new(rel: str, stat: Stat) -> Upload:
        return Upload("pre/" + rel, rel, stat, Reason.NEW)

    pair = push_pair(lambda rel: "pre/" + rel, exact_reason)
    matcher: Matcher[Upload] = Matcher(pair, new_local=new)
    assert matcher.local("b", Stat(2, T)) is None  # the listing may still hold it
    assert matcher.local("a", Stat(1, T)) is None
    assert matcher.remote("c", Stat(3, T)) is None  # a remote entry waits as before

    assert list(matcher.end_remote()) == [new("a", Stat(1, T)), new("b", Stat(2, T))]
    assert matcher.local("d", Stat(4, T)) == new("d", Stat(4, T))  # nothing left to wait for
    assert matcher.local("c", Stat(3, T)) is None  # still paired: the same, so no action
    assert list(matcher.local_leftovers()) == []
    assert matcher.remote_leftovers() == []


def test_a_side_without_actions_of_its_own_cannot_be_ended_early() -> None:
    matcher: Matcher[Upload] = Matcher(push_pair(str, exact_reason))
    matcher.remote("a", Stat(1, T))
    with pytest.raises(ValueError, match="no actions on their own"):
        list(matcher.end_local())
    assert matcher.remote_leftovers() == [("a", Stat(1, T))]


@pytest.mark.parametrize(
    ("remote", "local", "compare", "expected"),
    [
        (Stat(5, T, '"e1"'), None, Compare.MTIME, Reason.NEW),
        (Stat(5, T, '"e1"'), Stat(4, T - 99), Compare.MTIME, Reason.SIZE),
        (Stat(5, T, '"e1"'), Stat(5, T - 99, '"e1"'), Compare.MTIME, None),  # restored from it
        # a decompressed object: the mark (checked against the file's size) vouches for it
        (Stat(5, T, '"e1"'), Stat(9, T - 99, '"e1"'), Compare.MTIME, None),
        (Stat(5, T, '"e2"'), Stat(5, T - 99, '"e1"'), Compare.MTIME, Reason.CONTENT),  # replaced
        (Stat(5, T, '"e2"'), Stat(9, T - 99, '"e1"'), Compare.MTIME, Reason.SIZE),
        (Stat(5, T, '"e1"'), Stat(5, T - 99), Compare.MTIME, Reason.UNVERIFIED),  # no record
        (Stat(5, T, '"e1"'), Stat(5, T - 99), Compare.SIZE, None),
        (Stat(5, T, '"e1"'), Stat(4, T - 99), Compare.SIZE, Reason.SIZE),
        (Stat(5, T, '"e1"'), Stat(5, T - 99, '"e1"'), Compare.CHECKSUM, Reason.UNVERIFIED),
        (Stat(5, T, '"e1"'), Stat(9, T - 99, '"e1"'), Compare.CHECKSUM, Reason.UNVERIFIED),
        (Stat(5, T, '"e1"'), Stat(9, T - 99), Compare.CHECKSUM, Reason.SIZE),
    ],
)
def test_restore_rule(
    remote: Stat, local: Stat | None, compare: Compare, expected: Reason | None
) -> None:
    assert restore_reason(remote, local, compare=compare) is expected


@pytest.mark.parametrize(
    ("local", "compare", "expected"),
    [
        (Stat(5, T + 10**9), Compare.MTIME, Reason.UNVERIFIED),  # metadata and MD5 tell
        (Stat(5, T - 3600 * 10**9), Compare.MTIME, Reason.UNVERIFIED),  # metadata must tell
        (Stat(5, T - 3600 * 10**9), Compare.SIZE, Reason.UNVERIFIED),
        (Stat(5, T + 10**9), Compare.CHECKSUM, Reason.UNVERIFIED),
    ],
)
def test_compressed_rule_never_compares_the_listed_size(
    local: Stat, compare: Compare, expected: Reason
) -> None:
    listed = Stat(2, T, '"gz"')  # the compressed size: never the file's

    def rule(*, force: bool = False, ignore_existing: bool = False) -> Rule:
        return push_rule(
            compare=compare,
            exact=False,
            fudge=FUDGE,
            compressed=True,
            force=force,
            ignore_existing=ignore_existing,
        )

    assert rule()(local, listed) is expected
    assert rule()(local, None) is Reason.NEW
    assert rule(force=True)(local, listed) is Reason.FORCED
    assert rule(ignore_existing=True)(local, listed) is None


def test_compressed_paths_use_their_own_rule() -> None:
    pair = push_pair(
        str,
        fudge_rule(FUDGE),
        compressed=(
            lambda rel: rel.endswith(".css"),
            push_rule(compare=Compare.MTIME, exact=False, fudge=0, compressed=True),
        ),
    )
    old, listed = Stat(10, T - 10**12), Stat(3, T, '"gz"')
    css = pair("a.css", old, listed)
    assert css is not None and css.reason is Reason.UNVERIFIED
    png = pair("a.png", old, listed)
    assert png is not None and png.reason is Reason.SIZE


def test_unchanged_file_with_stale_headers_gets_a_headers_action_and_nothing_else_does() -> None:
    stale = {"a.html"}
    seen: list[str] = []
    pair = push_pair(
        str,
        fudge_rule(FUDGE),
        lambda rel, _stat: seen.append(rel),
        lambda rel, _remote: Reason.HEADERS if rel in stale else None,
    )
    same = Stat(10, 100 * 10**9)
    listed = Stat(10, 5_000 * 10**9, '"e"', headers="old")
    fixed = pair("a.html", same, listed)
    assert fixed == Upload("a.html", "a.html", same, Reason.HEADERS, listed)
    assert pair("b.css", same, listed) is None and seen == ["b.css"]
    changed = pair("a.html", Stat(11, 100 * 10**9), listed)  # content wins over headers
    assert changed is not None and changed.reason is Reason.SIZE


def test_only_the_lead_of_the_faster_side_counts_as_ahead() -> None:
    matcher: Matcher[Upload] = Matcher(push_pair(str, exact_reason), lead=2)
    for rel in ("a", "b", "c"):  # the walk runs three paths ahead of the listing
        assert matcher.local(rel, Stat(1, T)) is None
    assert matcher.ahead(local=True)
    assert not matcher.ahead(local=False)

    matcher.remote("b", Stat(1, T))  # the listing reaches "b": only "c" is ahead now
    assert not matcher.ahead(local=True)
    # "a" was passed without a match: it waits (a new file), but is no lead
    matcher.remote("d", Stat(1, T))
    matcher.remote("e", Stat(1, T))
    matcher.remote("f", Stat(1, T))
    assert matcher.ahead(local=False)
    assert not matcher.ahead(local=True)
    assert matcher.pending() == 5  # "a" and "c" (new files), "d", "e" and "f"


def test_a_side_out_of_order_only_changes_how_far_ahead_it_looks() -> None:
    matcher: Matcher[Upload] = Matcher(push_pair(str, exact_reason), lead=1)
    # SeaweedFS lists "a/b" before "a-b"; the walk, like S3, gives "a-b" first
    matcher.local("a-b", Stat(1, T))
    matcher.local("a/b", Stat(1, T))
    matcher.remote("a/b", Stat(1, T))
    matcher.remote("a-b", Stat(1, T))
    assert matcher.pending() == 0 and matcher.unchanged == 2
    for rel in ("x", "y"):
        matcher.local(rel, Stat(1, T))
    for rel in ("p", "q"):  # behind the walk: no lead at all
        matcher.remote(rel, Stat(1, T))
    assert matcher.ahead(local=True) and not matcher.ahead(local=False)


@given(
    st.lists(st.text("ab-/", min_size=1, max_size=4), unique=True, max_size=30),
    st.lists(st.text("ab-/", min_size=1, max_size=4), unique=True, max_size=30),
    st.lists(st.booleans(), max_size=60),
)
def test_the_lead_never_holds_both_sides_and_never_changes_a_decision(
    local: list[str], remote: list[str], turns: list[bool]
) -> None:
    local.sort()
    remote.sort(key=lambda k: k.replace("/", "\0"))  # a server listing in walk order
    matcher: Matcher[Upload] = Matcher(push_pair(str, exact_reason), lead=0)
    locals_, remotes = iter(local), iter(remote)
    for turn in [*turns, *[True] * len(local), *[False] * len(remote)]:
        for rel in locals_ if turn else remotes:
            (matcher.local if turn else matcher.remote)(rel, Stat(1, T))
            break
        assert not (matcher.ahead(local=True) and matcher.ahead(local=False))
    assert matcher.unchanged == len(set(local) & set(remote))
    assert {r for r, _ in matcher.remote_leftovers()} == set(remote) - set(local)
    assert {r for r, _ in matcher.local_leftovers()} == set(local) - set(remote)


@pytest.mark.parametrize("unknown", [None, Reason.HEADERS])
def test_objects_whose_headers_are_not_known_get_the_unknown_reason_unasked(
    unknown: Reason | None,
) -> None:
    asked: list[str] = []

    def recheck(rel: str, _remote: Stat) -> Reason | None:
        asked.append(rel)
        return Reason.ENCODING

    pair = push_pair(str, exact_reason, None, recheck, unknown_headers=unknown)
    same = Stat(10, 100)
    unknown_pair = pair("a.html", same, Stat(10, 100))
    assert (unknown_pair.reason if unknown_pair else None) is unknown and asked == []
    known = pair("b.html", same, Stat(10, 100, headers="digest"))
    assert known is not None and known.reason is Reason.ENCODING and asked == ["b.html"]
