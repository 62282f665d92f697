"""Threads: scans that feed a matcher, and a bounded worker pool whose results come home.

The engine knows nothing of S3 or files. Sources run on their own threads and may run
ahead of the main thread by at most *backlog* items (or, when none of them waits on the
network, one after another in the main thread). The main thread, iterating
``stream``, turns their items into actions (``handle``), starts them or hands them to
the pool (at most *in_flight* at once), and gets every result back in the same thread,
so the caller can count, print and record without locks. ``workers=0`` performs inline.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

from s3sync.window import Window

if TYPE_CHECKING:  # concurrent.futures loads logging: a run that uploads nothing skips both
    from concurrent.futures import Future, ThreadPoolExecutor

E = TypeVar("E")
A = TypeVar("A")
R = TypeVar("R")
T = TypeVar("T")


class Runners(NamedTuple, Generic[R]):
    """Where a Start may run what it cannot do on its own threads: ``later(fn)`` on the
    workers, ``here(fn)`` in the caller's thread the next time it waits for work (from
    any thread; *fn* must not block)."""

    later: Callable[[Callable[[], R]], Future[R]]
    here: Callable[[Callable[[], object]], None]


# begin an action off the workers and return its Future, or None: see ``stream``
Start = Callable[[A, Runners[R]], "Future[R] | None"]


def chain(source: Future[R], target: Future[R]) -> None:
    """Give *target* the result or error *source* ends with."""

    def copy(done: Future[R]) -> None:
        error = done.exception()
        if error is not None:
            target.set_exception(error)
        else:
            target.set_result(done.result())

    source.add_done_callback(copy)


def settling(future: Future[R], settle: Callable[[T], None]) -> Callable[[T], None]:
    """Return *settle*, for a Start's ``here`` call, with whatever it raises ending
    *future* (told as the action's result, so the run goes on) rather than the stream."""

    def safely(answer: T) -> None:
        try:
            settle(answer)
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)

    return safely


# the events the main thread takes: named tuples, made at import in a sixth of a
# dataclass's time (every run pays for its imports) and per item at half the cost
class _Item(NamedTuple, Generic[E]):
    source: int
    value: E


class _End(NamedTuple):
    source: int
    error: BaseException | None


class _Done(NamedTuple, Generic[R]):
    future: Future[R]


class _Call(NamedTuple):
    fn: Callable[[], object]


def _pulled(index: int, source: Callable[[], Iterable[E]]) -> Iterator[_Item[E] | _End]:
    """Yield what *source* yields as items, then its end, with the error it raised.

    Only errors are caught: an interruption raised while an inline source runs in the
    main thread stays an interruption, not a failed scan.
    """
    try:
        for value in source():
            yield _Item(index, value)
    except Exception as exc:  # handed to the main thread, which decides
        yield _End(index, exc)
    else:
        yield _End(index, None)


def _run_source(
    index: int,
    source: Callable[[], Iterable[E]],
    out: queue.SimpleQueue[object],
    budget: threading.Semaphore,
    stop: Callable[[], bool],
    held: Callable[[], bool],
    handled: threading.Condition,
) -> None:
    try:
        for item in _pulled(index, source):
            if isinstance(item, _Item):
                while not budget.acquire(timeout=0.2):
                    if stop():
                        return
                if stop():
                    return
            out.put(item)
            with handled:  # before scanning on, until the main thread says otherwise
                while held() and not stop():
                    handled.wait(0.2)
    except BaseException as exc:  # not an Exception, yet the main thread must hear of it
        out.put(_End(index, exc))


class SourceFailed(Exception):
    """A source raised; ``source`` is its index and ``__cause__`` the error."""

    def __init__(self, source: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.source = source
        self.error = error


def stream(
    sources: Sequence[Callable[[], Iterable[E]]],
    handle: Callable[[int, E], Iterable[A]],
    finish: Callable[[], Iterable[A]],
    perform: Callable[[A], R],
    *,
    workers: int,
    cancel: Callable[[], bool],
    in_flight: int | Window | None = None,
    backlog: int = 16,
    start: Start[A, R] | None = None,
    inline: bool = False,
    hold: Callable[[int], bool] | None = None,
) -> Iterator[R]:
    """Yield the result of every action produced from *sources*, in the caller's thread.

    At most *in_flight* actions (``4 * workers`` unless given) are begun and not yet
    yielded at any time: those started on their own threads and those the pool holds.
    Given a Window, its limit of the moment, which the store lowers while the server
    throttles and which grows back as actions end.

    With *start*, each action is first offered to ``start(action, runners)`` in the
    caller's thread: it may begin the action on threads of its own and return a Future
    of its result (finishing it with the Runners), or return None to have the workers
    ``perform`` it.

    ``handle(source_index, item)`` runs in the caller's thread for every item; once all
    sources have ended, ``finish()`` supplies the last actions. When a source raises,
    or ``cancel()`` turns true, or the caller's thread is interrupted, no new action
    starts, in-flight ones finish and are yielded, and then SourceFailed (or the
    interruption) is raised; a cancel alone ends the stream quietly. *cancel* is polled
    while waiting, so a signal handler may set what it reads at any moment.

    Each source on its thread runs at most *backlog* items ahead of the main thread,
    and pauses after an item while ``hold(source_index)`` is true once the main thread
    has handled what came before (the matcher holds a scan that ran far ahead of the
    other), never while another source has ended.

    With *inline*, the sources run one after another in the caller's thread, for
    sources that never wait on the network (a walk, a local index): on threads they
    would only take turns for the GIL, and a walk's thread, giving the GIL up at each
    stat, would wait for it behind the main thread's work. *hold* is not asked then.
    """
    events: queue.SimpleQueue[object] = queue.SimpleQueue()
    early: collections.deque[object] = collections.deque()
    budgets = [threading.Semaphore(backlog) for _ in sources]
    handled = threading.Condition()
    live_sources = [True] * len(sources)
    pool: ThreadPoolExecutor | None = None  # made for the first action: a no-op has none
    window = in_flight if isinstance(in_flight, Window) else Window(in_flight or 4 * workers)
    inflight = 0
    ended = threading.Event()
    aborted = threading.Event()

    def stopped() -> bool:
        return ended.is_set() or aborted.is_set() or cancel()

    def get(timeout: float | None = None) -> object:
        """Return the next event, running the calls a Start posted meanwhile."""
        while True:
            item = events.get(timeout=timeout)
            if not isinstance(item, _Call):
                return item
            item.fn()

    def take() -> object:
        if early:
            return early.popleft()
        while True:
            try:
                return get(timeout=0.25)
            except queue.Empty:
                if stopped():
                    return None

    making = threading.Lock()

    def workers_pool() -> ThreadPoolExecutor:
        nonlocal pool
        if pool is None:
            with making:  # ``later`` may come from another thread: one pool, never two
                if pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    pool = ThreadPoolExecutor(workers, thread_name_prefix="s3sync-work")
        return pool

    runners: Runners[R] | None = (
        Runners(lambda fn: workers_pool().submit(fn), lambda fn: events.put(_Call(fn)))
        if workers
        else None
    )

    def submit(action: A) -> Iterator[R]:
        nonlocal inflight
        if runners is None:
            yield perform(action)
            return
        while inflight >= window.limit:
            item = get()
            if isinstance(item, _Done):
                inflight -= 1
                window.ended()
                yield item.future.result()
            else:
                early.append(item)
        future = start(action, runners) if start is not None else None
        if future is None:
            future = workers_pool().submit(perform, action)
        inflight += 1
        future.add_done_callback(lambda f: events.put(_Done(f)))

    def drain() -> Iterator[R]:
        nonlocal inflight
        while inflight:
            item = get()
            if isinstance(item, _Done):
                inflight -= 1
                window.ended()
                yield item.future.result()

    def ready() -> Iterator[object]:
        """Yield the results already in, without waiting (between inline items)."""
        while True:
            try:
                item = events.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Call):
                item.fn()
            else:
                yield item

    def pulled_here() -> Iterator[object]:
        for index, source in enumerate(sources):
            for item in _pulled(index, source):
                yield from ready()
                if stopped():
                    return
                yield item

    def holder(index: int) -> Callable[[], bool]:
        if hold is None:
            return lambda: False
        return lambda: all(live_sources) and hold(index)

    def pulled_on_threads() -> Iterator[object]:
        for index, source in enumerate(sources):
            threading.Thread(
                target=_run_source,
                args=(index, source, events, budgets[index], stopped, holder(index), handled),
                name=f"s3sync-scan-{index}",
                daemon=True,
            ).start()
        live = len(sources)
        while live and not stopped():
            item = take()
            if isinstance(item, _End):
                live -= 1
                live_sources[item.source] = False
            elif isinstance(item, _Item):
                budgets[item.source].release()
            if item is not None:
                yield item
            if hold is not None:  # what the item changed may let a held source go on
                with handled:
                    handled.notify_all()

    failure: SourceFailed | None = None
    try:
        for item in pulled_here() if inline else pulled_on_threads():
            if isinstance(item, _Done):
                inflight -= 1
                window.ended()
                yield item.future.result()
            elif isinstance(item, _End):
                if item.error is not None:
                    failure = SourceFailed(item.source, item.error)
                    failure.__cause__ = item.error
                    break
            elif isinstance(item, _Item):
                for action in handle(item.source, item.value):
                    yield from submit(action)
                    if stopped():
                        break
        if failure is None and not stopped():
            for action in finish():
                yield from submit(action)
                if stopped():
                    break
        yield from drain()
    except GeneratorExit:
        raise
    except BaseException:
        aborted.set()
        yield from drain()
        raise
    finally:
        ended.set()
        with handled:
            handled.notify_all()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    if failure is not None:
        raise failure


def apply(
    actions: Iterable[A], perform: Callable[[A], R], *, workers: int, cancel: Callable[[], bool]
) -> Iterator[R]:
    """Yield ``perform(action)`` for each action, run on *workers* threads (0: inline)."""
    return stream((), lambda _i, _v: (), lambda: actions, perform, workers=workers, cancel=cancel)


class Retried(NamedTuple):
    """A source retried *requests* requests; the main thread counts them."""

    requests: int


class Ended:
    """The last item of a source that tells ``handle`` it has ended (see ``telling_end``)."""

    __slots__ = ()


def telling_end(items: Iterable[E]) -> Iterator[E | Ended]:
    """Yield *items*, then Ended once they ran out (not when they raised): what waits for
    the other side of a path can then be decided before every source has ended."""
    yield from items
    yield Ended()


def counting_retries(
    produce: Callable[[Callable[[BaseException], None]], Iterable[E]],
) -> Iterator[E | Retried]:
    """Yield what ``produce(on_retry)`` yields, with a Retried item after each retry."""
    retried: list[BaseException] = []
    for item in produce(retried.append):
        if retried:
            yield Retried(len(retried))
            retried.clear()
        yield item


def drive(
    results: Iterator[R], each: Callable[[R], object], on_interrupt: Callable[[], None]
) -> None:
    """Pass every result to *each*; on Ctrl-C call *on_interrupt* and drain in-flight work."""
    while True:
        try:
            for result in results:
                each(result)
            return
        except KeyboardInterrupt:
            on_interrupt()
