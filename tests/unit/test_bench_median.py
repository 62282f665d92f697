"""The benchmark keeps the median run of a repeated phase, and never hides a failure."""

from __future__ import annotations

from benchmarks.run import Figure, median


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
