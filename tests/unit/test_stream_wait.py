"""cat's wait for a part: a cancel is seen between waits, never raised inside one."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from s3sync.usecases.stream import _result


def test_a_finished_part_is_returned() -> None:
    future: Future[bytes] = Future()
    future.set_result(b"part")
    assert _result(future, threading.Event()) == b"part"
    assert _result(future, None) == b"part"


def test_a_part_that_failed_with_a_timeout_raises_it_rather_than_waiting_again() -> None:
    future: Future[bytes] = Future()
    future.set_exception(TimeoutError("read timed out"))  # a socket timeout is one
    with pytest.raises(TimeoutError, match="read timed out"):
        _result(future, threading.Event())


def test_a_cancel_while_a_part_is_awaited_raises_keyboard_interrupt() -> None:
    future: Future[bytes] = Future()  # never finishes
    cancel = threading.Event()
    timer = threading.Timer(0.05, cancel.set)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _result(future, cancel)
    finally:
        timer.cancel()
    assert not future.done()  # left to the caller, which drops or awaits it
