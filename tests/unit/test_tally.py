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
