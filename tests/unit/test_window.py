"""The window of requests in flight halves when the server throttles, once a burst,
and grows back to the most after whole windows of requests end well."""

from __future__ import annotations

from s3sync.errors import RemoteError
from s3sync.window import Window, throttled


def test_a_window_starts_at_the_most_and_never_below_one() -> None:
    assert Window(128).limit == 128
    assert Window(0).limit == 1
    window = Window(4)
    for _ in range(10):
        window.slow_down()
        for _ in range(window.limit):
            window.ended()
        window.slow_down()
    assert window.limit >= 1


def test_a_burst_of_throttling_halves_the_window_once() -> None:
    window = Window(64)
    for _ in range(40):  # the answers to requests already in flight
        window.slow_down()
    assert window.limit == 32


def test_throttling_after_the_burst_in_flight_ended_halves_it_again() -> None:
    window = Window(64)
    window.slow_down()  # 64 were in flight: their answers are the same burst
    for _ in range(63):
        window.ended()
    assert window.limit == 40  # grown once, after a window of 32
    window.slow_down()
    assert window.limit == 40
    window.ended()
    window.slow_down()
    assert window.limit == 20


def test_the_window_grows_back_to_the_most_after_whole_windows_end_well() -> None:
    window = Window(64)
    window.slow_down()
    window.slow_down()  # same burst
    limits = []
    while window.limit < 64:
        for _ in range(window.limit):
            window.ended()
        limits.append(window.limit)
    assert limits == [40, 50, 62, 64]
    for _ in range(1000):
        window.ended()
    assert window.limit == 64


def test_what_counts_as_throttling() -> None:
    assert throttled(RemoteError("x", code="SlowDown", status=503))
    assert throttled(RemoteError("x", code="ServiceUnavailable", status=503))
    assert throttled(RemoteError("x", code="TooManyRequests", status=429))
    assert not throttled(RemoteError("x", code="InternalError", status=500))
    assert not throttled(RemoteError("x", code="ReadTimeout"))
