"""The engine: results come home to the caller's thread, work starts before scans end."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from s3sync import engine


def test_serial_threaded_and_inline_runs_give_the_same_results() -> None:
    def run(workers: int, *, inline: bool = False) -> list[int]:
        return sorted(
            engine.stream(
                [lambda: range(0, 50), lambda: range(100, 150)],
                lambda source, item: [item] if item % 2 else [],
                lambda: [1000, 1001],
                lambda action: action * 10,
                workers=workers,
                cancel=threading.Event().is_set,
                inline=inline,
            )
        )

    expected = sorted([x * 10 for x in [*range(0, 50), *range(100, 150)] if x % 2] + [10000, 10010])
    assert run(0) == expected
    assert run(4) == expected
    assert run(0, inline=True) == expected
    assert run(4, inline=True) == expected


def test_inline_sources_run_in_the_callers_thread_one_after_another() -> None:
    caller = threading.get_ident()
    pulled: list[tuple[str, int]] = []

    def source(name: str) -> Iterator[str]:
        for n in range(3):
            pulled.append((name, threading.get_ident()))
            yield f"{name}{n}"

    handled: list[tuple[int, str]] = []

    def handle(index: int, item: str) -> list[str]:
        handled.append((index, item))
        return [item]

    results = engine.stream(
        [lambda: source("index"), lambda: source("walk")],
        handle,
        list,
        lambda action: action,
        workers=2,
        cancel=threading.Event().is_set,
        inline=True,
    )
    assert sorted(results) == ["index0", "index1", "index2", "walk0", "walk1", "walk2"]
    assert {thread for _, thread in pulled} == {caller}
    # the first source ends before the second begins, each item handled as it comes
    assert handled == [(0, f"index{n}") for n in range(3)] + [(1, f"walk{n}") for n in range(3)]


def test_an_interrupt_inside_an_inline_source_stays_an_interrupt() -> None:
    def interrupted() -> Iterator[int]:
        yield 1
        raise KeyboardInterrupt

    finished: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        for result in engine.stream(
            [interrupted],
            lambda s, i: [i],
            lambda: [99],
            lambda a: a,
            workers=2,
            cancel=threading.Event().is_set,
            inline=True,
        ):
            finished.append(result)
    assert finished == [1]  # the in-flight action came home; finish() never ran


def test_results_arrive_in_the_callers_thread() -> None:
    caller = threading.get_ident()
    handled_in: set[int] = set()

    def handle(source: int, item: int) -> list[int]:
        handled_in.add(threading.get_ident())
        return [item]

    performed_in: set[int] = set()

    def perform(action: int) -> int:
        performed_in.add(threading.get_ident())
        return action

    results = list(
        engine.stream(
            [lambda: range(20)], handle, list, perform, workers=3, cancel=threading.Event().is_set
        )
    )
    assert sorted(results) == list(range(20))
    assert handled_in == {caller}
    assert caller not in performed_in


@pytest.mark.parametrize("inline", [False, True], ids=["threads", "inline"])
def test_work_starts_while_a_source_is_still_running(inline: bool) -> None:
    performed = threading.Event()

    def slow_listing() -> Iterator[str]:
        yield "first"
        # the listing only goes on once the first action has been performed
        assert performed.wait(timeout=10), "no action ran while the listing was running"
        yield "second"

    def perform(action: str) -> str:
        performed.set()
        return action

    results = list(
        engine.stream(
            [slow_listing],
            lambda s, item: [item],
            list,
            perform,
            workers=2,
            cancel=threading.Event().is_set,
            inline=inline,
        )
    )
    assert sorted(results) == ["first", "second"]


@pytest.mark.parametrize("inline", [False, True], ids=["threads", "inline"])
def test_a_failing_source_stops_new_work_and_raises_after_in_flight_work(inline: bool) -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise OSError("listing exploded")

    finished: list[int] = []
    with pytest.raises(engine.SourceFailed) as caught:
        for result in engine.stream(
            [broken],
            lambda s, i: [i],
            lambda: [99],
            lambda a: a,
            workers=2,
            cancel=threading.Event().is_set,
            inline=inline,
        ):
            finished.append(result)
    assert caught.value.source == 0
    assert isinstance(caught.value.error, OSError)
    assert 99 not in finished  # finish() never ran after the failure


@pytest.mark.parametrize("inline", [False, True], ids=["threads", "inline"])
def test_cancel_stops_taking_new_work(inline: bool) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def perform(action: int) -> int:
        if action == 3:
            cancel.set()
        return action

    for result in engine.stream(
        [lambda: range(1000)],
        lambda s, i: [i],
        list,
        perform,
        workers=0,
        cancel=cancel.is_set,
        inline=inline,
    ):
        seen.append(result)
    assert seen == [0, 1, 2, 3]


def test_apply_runs_every_action() -> None:
    results = engine.apply([1, 2, 3], lambda a: a + 1, workers=2, cancel=threading.Event().is_set)
    assert sorted(results) == [2, 3, 4]


def test_a_held_source_pauses_until_the_main_thread_lets_it_go_on() -> None:
    handled: list[tuple[int, int]] = []
    go = threading.Event()
    paused_at: list[int] = []

    def fast() -> Iterator[int]:
        yield from range(10)

    def slow() -> Iterator[int]:
        go.wait()
        yield from range(3)

    def hold(index: int) -> bool:
        # the fast source waits once it is 3 items ahead, until the slow one begins
        waiting = index == 0 and sum(1 for i, _ in handled if i == 0) >= 3 and not go.is_set()
        if waiting and not paused_at:
            paused_at.append(len(handled))
            go.set()  # only now does the slow source start
        return waiting

    def handle(index: int, item: int) -> list[int]:
        handled.append((index, item))
        return []

    list(
        engine.stream(
            [fast, slow],
            handle,
            list,
            lambda action: action,
            workers=1,
            cancel=threading.Event().is_set,
            backlog=1,
            hold=hold,
        )
    )
    assert paused_at == [3]
    assert sorted(handled) == [(0, n) for n in range(10)] + [(1, n) for n in range(3)]


def test_a_source_is_not_held_once_the_other_has_ended() -> None:
    handled: list[tuple[int, int]] = []

    def handle(index: int, item: int) -> list[int]:
        handled.append((index, item))
        return []

    list(
        engine.stream(
            [lambda: range(5), lambda: range(0)],
            handle,
            list,
            lambda action: action,
            workers=1,
            cancel=threading.Event().is_set,
            hold=lambda index: index == 0,  # would hold source 0 forever
        )
    )
    assert handled == [(0, n) for n in range(5)]


def test_work_sent_to_the_workers_from_many_threads_at_once_shares_one_pool() -> None:
    from concurrent.futures import Future

    ran_on: set[threading.Thread] = set()

    def start(action: int, runners: engine.Runners[int]) -> Future[int]:
        """Send work to the workers from eight threads at the same moment, before any
        action has made the pool."""
        gate = threading.Barrier(8)
        sent: list[Future[int]] = []

        def work() -> int:
            ran_on.add(threading.current_thread())
            return action

        def send() -> None:
            gate.wait()
            sent.append(runners.later(work))

        threads = [threading.Thread(target=send) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done: Future[int] = Future()
        done.set_result(sum(future.result() for future in sent))
        return done

    results = engine.stream(
        [lambda: [3]],
        lambda source, item: [item],
        list,
        lambda action: action,
        workers=1,
        cancel=threading.Event().is_set,
        start=start,
    )
    assert list(results) == [24]
    assert len(ran_on) == 1  # one worker: a second pool would have brought its own
