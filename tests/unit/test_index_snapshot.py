"""The index's snapshot: read instead of the rows, and never out of step with them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3sync.index import Binding, Index
from s3sync.model import Stat

BINDING = Binding("http://127.0.0.1:9", "bucket", "site/")


def _read(index: Index) -> dict[str, Stat]:
    rows = [row for page in index.pages() for row in page]
    assert len(rows) == len({rel for rel, _ in rows})
    return dict(rows)


def _committed(path: str, rows: dict[str, Stat]) -> Index:
    """Return a new index at *path* holding *rows*, committed and still open."""
    index = Index.rebuild(path, BINDING)
    for relpath, stat in rows.items():
        index.put(relpath, stat, stat.etag, stat.headers)
    index.commit()
    return index


def _snapshots(path: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM snapshot").fetchone()[0])


_RELPATH = st.sampled_from(["a.txt", "b/c.html", "b/d", "é/ü.css", "z"])
_STAT = st.builds(
    Stat,
    st.integers(0, 2**40),
    st.integers(-(2**62), 2**62),
    st.none() | st.text(max_size=8),
    st.none(),
    st.none() | st.text(max_size=8),
)
_STEP = st.one_of(
    st.tuples(st.just("put"), _RELPATH, _STAT),
    st.tuples(st.just("remove"), _RELPATH, st.none()),
    st.tuples(st.just("save"), st.none(), st.none()),
    st.tuples(st.just("reopen"), st.none(), st.none()),
)


Step = tuple[str, str | None, Stat | None]


@settings(max_examples=60, deadline=None)
@given(st.lists(_STEP, max_size=12))
def test_pages_always_show_the_rows(
    tmp_path_factory: pytest.TempPathFactory, steps: list[Step]
) -> None:
    """Whatever mix of writes, saved snapshots and reopenings: what pages() gives is
    exactly what was written, snapshot or not."""
    path = str(tmp_path_factory.mktemp("i") / "i.db")
    index = _committed(path, {})
    expected: dict[str, Stat] = {}
    for op, relpath, stat in steps:
        if op == "put":
            assert relpath is not None and stat is not None
            index.put(relpath, stat, stat.etag, stat.headers)
            expected[relpath] = stat
        elif op == "remove":
            assert relpath is not None
            index.remove(relpath)
            expected.pop(relpath, None)
        elif op == "save":
            index.save_snapshot()
        else:
            index.close()
            index = Index.open(path, BINDING)
        assert _read(index) == expected
    index.close()


def test_pages_come_from_the_snapshot_while_it_stands(tmp_path: Path) -> None:
    path = str(tmp_path / "i.db")
    index = Index.rebuild(path, BINDING)
    index.put("a.txt", Stat(1, 10), '"e"', "h")
    index.save_snapshot()
    index.commit()
    assert _snapshots(path) == 1
    with sqlite3.connect(path) as conn:  # a row changed behind the triggers' back
        conn.execute("DROP TRIGGER snapshot_update")
        conn.execute("UPDATE objects SET size = 2")
    assert _read(index) == {"a.txt": Stat(1, 10, '"e"', None, "h")}  # the snapshot's

    index.put("b.txt", Stat(3, 30))  # a change the triggers see drops it
    assert _snapshots(path) == 0
    assert _read(index) == {"a.txt": Stat(2, 10, '"e"', None, "h"), "b.txt": Stat(3, 30)}
    index.save_snapshot()
    index.save_snapshot()  # one is enough: nothing is written again
    assert _snapshots(path) == 1
    index.close()


def test_a_damaged_snapshot_is_passed_over_for_the_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "i.db")
    index = _committed(path, {"a.txt": Stat(1, 10)})
    for blob in (b"\x00garbage", b"N", b"[\x00\x00\x00\x00"):
        with sqlite3.connect(path) as conn:
            conn.execute("INSERT OR REPLACE INTO snapshot VALUES (1, ?)", (blob,))
        assert _read(index) == {"a.txt": Stat(1, 10)}
    index.close()


def test_an_index_from_before_snapshots_gets_them_on_open(tmp_path: Path) -> None:
    path = str(tmp_path / "i.db")
    _committed(path, {"a.txt": Stat(1, 10)}).close()
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "DROP TRIGGER snapshot_insert; DROP TRIGGER snapshot_update;"
            "DROP TRIGGER snapshot_delete; DROP TABLE snapshot;"
        )
    index = Index.open(path, BINDING)
    index.save_snapshot()
    index.put("b.txt", Stat(2, 20))  # the new triggers drop the snapshot
    assert _read(index) == {"a.txt": Stat(1, 10), "b.txt": Stat(2, 20)}
    index.close()
