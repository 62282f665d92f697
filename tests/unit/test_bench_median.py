"""The benchmark keeps the median run of a repeated phase, never hides a failure,
starts each run with the machine idle, and starts no sooner than it should after the
last run's cleanup."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from benchmarks import links
from benchmarks.run import (
    Figure,
    busy_seconds,
    mark_cleaned,
    median,
    network_table,
    settle,
    wait_out_cleanup,
)


def run(wall: float, code: int = 0) -> Figure:
    return Figure("no-op push", "s3sync", 100, wall, wall / 2, 50.0, 20, code)


def test_median_is_the_middle_run_by_wall_time() -> None:
    assert median([run(3.0), run(1.0), run(2.0)]) == run(2.0)


def test_an_even_count_keeps_the_upper_middle() -> None:
    assert median([run(1.0), run(4.0), run(2.0), run(3.0)]) == run(3.0)


def test_a_single_run_is_its_own_median() -> None:
    assert median([run(7.0)]) == run(7.0)


def test_a_failed_run_is_kept_over_a_good_median() -> None:
    assert median([run(1.0), run(2.0, code=1), run(3.0)]) == run(2.0, code=1)
    assert median([run(1.0), run(2.0), run(9.0, code=2)]).exit_code == 2


class FakeMachine:
    """A machine whose cores' busy time grows by the given amounts, one per window."""

    def __init__(self, burns: list[float]) -> None:
        self.burns = burns
        self.now = 0.0
        self.cpu = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.cpu += self.burns.pop(0) if self.burns else 0.0

    def used(self) -> float:
        return self.cpu


def test_settle_waits_while_the_machine_is_busy_then_returns() -> None:
    machine = FakeMachine([0.5, 0.4, 0.01])  # busy, busy, idle
    waited = settle(clock=lambda: machine.now, sleep=machine.sleep, used=machine.used)
    assert waited == 1.5


def test_settle_counts_a_tenth_of_a_core_as_busy() -> None:
    machine = FakeMachine([0.06, 0.04])  # 0.12 of a core over half a second, then 0.08
    waited = settle(clock=lambda: machine.now, sleep=machine.sleep, used=machine.used)
    assert waited == 1.0


def test_settle_gives_up_after_the_most_it_may_wait() -> None:
    machine = FakeMachine([0.5] * 100)
    waited = settle(most=3.0, clock=lambda: machine.now, sleep=machine.sleep, used=machine.used)
    assert waited == 3.0


def test_busy_seconds_counts_every_busy_field_and_no_idle_wait_or_steal() -> None:
    tick = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat = "cpu  100 20 30 9000 500 4 6 700 0 0\ncpu0 50 10 15 4500 250 2 3 350 0 0\n"
    assert busy_seconds(stat) == 160 / tick


def test_busy_seconds_grows_while_this_process_works() -> None:
    before = busy_seconds()
    started = time.process_time()
    while time.process_time() - started < 0.06:  # whole ticks of CPU, however slow
        sum(range(100_000))
    assert busy_seconds() - before >= 0.04


def test_a_tool_reports_its_own_peak_not_the_benchmarks() -> None:
    import sys

    from benchmarks.run import run_measured

    ballast = bytearray(150 * 1024 * 1024)  # this process is now over 150 MB
    ballast[::4096] = b"x" * len(ballast[::4096])
    code = "import sys; sys.exit(3)"
    wall, cpu, rss, exit_code = run_measured(
        [sys.executable, "-S", "-c", code], dict(os.environ), 2
    )
    assert exit_code == 3
    assert 0 < rss < 100 and wall > 0 and cpu >= 0
    del ballast


class Clock:
    """A wall clock that moves only when slept on."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_run_soon_after_the_last_cleanup_waits_out_the_rest(tmp_path: Path) -> None:
    stamp = tmp_path / "cleaned"
    stamp.write_text("1000.0\n")
    clock = Clock(1100.0)
    assert wait_out_cleanup(stamp, quiet=600.0, clock=clock, sleep=clock.sleep) == 500.0
    assert clock.slept == [500.0]


def test_a_run_long_after_the_last_cleanup_or_with_none_starts_at_once(tmp_path: Path) -> None:
    stamp = tmp_path / "cleaned"
    clock = Clock(1700.0)
    assert wait_out_cleanup(stamp, quiet=600.0, clock=clock, sleep=clock.sleep) == 0.0
    for text in ("1000.0\n", "not a time\n"):
        stamp.write_text(text)
        assert wait_out_cleanup(stamp, quiet=600.0, clock=clock, sleep=clock.sleep) == 0.0
    assert clock.slept == []


def test_a_clock_set_back_waits_no_longer_than_the_quiet_time(tmp_path: Path) -> None:
    stamp = tmp_path / "cleaned"
    stamp.write_text("5000.0\n")
    clock = Clock(1000.0)
    assert wait_out_cleanup(stamp, quiet=600.0, clock=clock, sleep=clock.sleep) == 600.0


def test_the_cleanup_noted_is_the_one_waited_for(tmp_path: Path) -> None:
    stamp = tmp_path / ".bench" / "cleaned"  # the directory need not exist yet
    mark_cleaned(stamp)
    clock = Clock(time.time() + 60.0)
    waited = wait_out_cleanup(stamp, quiet=600.0, clock=clock, sleep=clock.sleep)
    assert 539.0 < waited <= 540.0


def test_links_are_named_scheme_and_round_trip() -> None:
    assert links.parse("http/0, https/80,") == [("http", 0), ("https", 80)]
    for bad in ("ftp/20", "https", "http/fast"):
        with pytest.raises(ValueError, match="SCHEME/RTT_MS"):
            links.parse(bad)


def test_the_network_table_sets_s3sync_against_the_best_peer_that_succeeded() -> None:
    def linked(tool: str, wall: float, code: int = 0) -> Figure:
        return Figure("push", tool, 100, wall, 1.0, 50.0, 200, code, "https/80", 64)

    table = network_table(
        [linked("s3sync", 2.0), linked("s5cmd", 1.0, code=1), linked("rclone", 4.0)]
    )
    row = next(line for line in table.splitlines() if line.startswith("push"))
    shown = "push  https/80  2.00  rclone  4.00  0.50  200 / 200  64 / 64"
    assert row.split() == shown.split()
