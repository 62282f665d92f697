"""The reporting thread's tally: a retry asked for while the run stops is told, not lost."""

from __future__ import annotations

import threading

from s3sync.errors import RemoteError
from s3sync.model import Outcome, Reason, Report, Stat, Upload
from s3sync.progress import NullReporter
from s3sync.tally import Tally

UPLOAD = Upload("site/a.html", "a.html", Stat(10, 0), Reason.NEW)
SLOW_DOWN = RemoteError("upload of site/a.html failed: SlowDown", code="SlowDown")


def test_a_failure_that_may_pass_is_retried_while_the_run_goes_on() -> None:
    tally = Tally(Report(), NullReporter())
    tried: list[RemoteError] = []

    def transfer(action: Upload, failed: RemoteError) -> Outcome:
        tried.append(failed)
        return Outcome(action)

    assert tally.again(transfer, UPLOAD, SLOW_DOWN) == Outcome(UPLOAD)
    assert tried == [SLOW_DOWN]


def test_once_the_run_stops_the_failure_is_told_not_retried() -> None:
    cancel = threading.Event()
    tally = Tally(Report(), NullReporter(), cancel=cancel)
    cancel.set()  # Ctrl-C while the first attempt was in flight

    def transfer(action: Upload, failed: RemoteError) -> Outcome:
        raise AssertionError("no retry once the run is stopping")

    outcome = tally.again(transfer, UPLOAD, SLOW_DOWN)

    assert outcome.action == UPLOAD
    assert not outcome.ok
    assert outcome.error == str(SLOW_DOWN)
    assert not outcome.fatal


def test_the_bar_shows_no_percentage_until_the_scans_end_then_the_exact_total() -> None:
    import io

    from s3sync.progress import ConsoleReporter

    reporter = ConsoleReporter(verbosity=0, as_json=False, bar=True, err=io.StringIO())
    bar = reporter._bar
    assert bar is not None
    tally = Tally(Report(), reporter)
    uploads = [Upload(f"k{i}", f"k{i}", Stat(1, 0), Reason.NEW) for i in range(10)]

    def source() -> list[object]:
        return [1]

    def handle(_source: int, _item: object) -> list[Upload]:
        planned = [a for u in uploads[:4] for a in tally.planned(u)]
        assert "%" not in str(bar)  # 4 planned while the walk goes on: no total yet
        return planned

    def finish() -> list[Upload]:
        assert str(bar).count("/4") == 1  # both scans ended: 4 is the exact total
        return []

    done = tally.stream([source], handle, finish, lambda a: Outcome(a), workers=0)

    assert done
    assert "4/4" in str(bar) and "100%" in str(bar)
    for action in tally.planned(uploads[9]):  # a delete planned after: counted in
        tally.record(Outcome(action))
    assert "5/5" in str(bar)
